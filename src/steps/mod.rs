//! Deploy steps: the site's own commands around going live (`after_unpack`, `before_switch`,
//! `after_switch`), as argument lists, never shell lines. This module holds what a step is and
//! how it is checked when an admin saves it; `run.rs` runs one (its own process group, a time
//! limit, capped output, an unprivileged user), `record.rs` keeps what came of it.

pub mod run;
pub mod runner;
mod settings;
pub mod store;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use settings::{search_path, set_search_path, StepSettings, DEFAULT_PATH};

/// When a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Once, when an upload has been unpacked, before the release is ready (build steps).
    AfterUnpack,
    /// At every go-live, after configtest, before the switch (the live site untouched).
    BeforeSwitch,
    /// After the switch and reload, before the health check (a failure puts the old back).
    AfterSwitch,
}

impl Stage {
    /// Stored, API and environment (`CUTOVER_STAGE`) form.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::AfterUnpack => "after_unpack",
            Stage::BeforeSwitch => "before_switch",
            Stage::AfterSwitch => "after_switch",
        }
    }

    /// Every stage, in the order they run.
    pub const ALL: [Stage; 3] = [Stage::AfterUnpack, Stage::BeforeSwitch, Stage::AfterSwitch];
}

/// Limits on one command: no real deploy command comes near them, a pasted file does.
pub const MAX_ARGS: usize = 64;
/// Longest single argument.
pub const MAX_ARG_CHARS: usize = 4096;
/// Most commands in one stage.
pub const MAX_COMMANDS: usize = 20;

/// The site's steps: stage → commands, each a program and its arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Steps {
    /// Build steps, in the new release folder, before it is ready.
    pub after_unpack: Vec<Vec<String>>,
    /// Checks and warm-up before the switch.
    pub before_switch: Vec<Vec<String>>,
    /// Migrations, cache clearing, after the switch.
    pub after_switch: Vec<Vec<String>>,
}

impl Steps {
    /// The commands of `stage`.
    pub fn of(&self, stage: Stage) -> &[Vec<String>] {
        match stage {
            Stage::AfterUnpack => &self.after_unpack,
            Stage::BeforeSwitch => &self.before_switch,
            Stage::AfterSwitch => &self.after_switch,
        }
    }

    /// No command in any stage.
    pub fn is_empty(&self) -> bool {
        Stage::ALL.iter().all(|s| self.of(*s).is_empty())
    }

    /// Checks every command; `search_path` is where programs named without a `/` are found.
    /// Every problem is named at once, with its stage and position.
    pub fn check(&self, search_path: &str) -> Result<(), String> {
        let mut problems = Vec::new();
        for stage in Stage::ALL {
            let commands = self.of(stage);
            if commands.len() > MAX_COMMANDS {
                problems.push(format!(
                    "steps.{}: at most {MAX_COMMANDS} commands per stage.",
                    stage.as_str()
                ));
            }
            for (i, command) in commands.iter().enumerate() {
                if let Err(m) = check_command(command, search_path) {
                    problems.push(format!("steps.{}[{}]: {m}", stage.as_str(), i + 1));
                }
            }
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(problems.join(" ")),
        }
    }
}

/// One command: a program (found on `search_path` when named without a `/`; an absolute
/// path; or a path inside the release such as `bin/build`) and its arguments.
pub fn check_command(command: &[String], search_path: &str) -> Result<(), String> {
    let Some(program) = command.first() else {
        return Err("the command is empty: give the program and its arguments, e.g. [\"php\", \"artisan\", \"migrate\", \"--force\"].".into());
    };
    if program.trim().is_empty() {
        return Err("the program name is empty.".into());
    }
    if command.len() > MAX_ARGS {
        return Err(format!(
            "{} arguments; at most {MAX_ARGS}.",
            command.len() - 1
        ));
    }
    if let Some(a) = command.iter().find(|a| a.chars().count() > MAX_ARG_CHARS) {
        return Err(format!(
            "an argument is {} characters long; at most {MAX_ARG_CHARS}.",
            a.chars().count()
        ));
    }
    if command.iter().any(|a| a.contains('\0')) {
        return Err("an argument contains a NUL character, which no program can receive.".into());
    }
    if program.starts_with('/') {
        use std::os::unix::fs::PermissionsExt;
        let runnable = std::fs::metadata(program)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        return match runnable {
            true => Ok(()),
            false => Err(format!(
                "the program {} does not exist or is not executable on this server.",
                crate::vocab::clip(program)
            )),
        };
    }
    if program.contains('/') {
        // Inside the release: it only exists once a release is unpacked.
        return Ok(());
    }
    match find_program(program, search_path) {
        Some(_) => Ok(()),
        None => Err(format!(
            "the program {} is not found on the steps' PATH ({search_path}). Install it, give its full path, or a path inside the release such as bin/build.",
            crate::vocab::clip(program)
        )),
    }
}

/// Where `program` (no `/`) is on `search_path`: an executable file.
pub fn find_program(program: &str, search_path: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    search_path
        .split(':')
        .filter(|d| Path::new(d).is_absolute())
        .map(|d| Path::new(d).join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// One line of the site form: a command written as a JSON array, or as words split the way
/// a POSIX shell splits them (quotes and backslashes), with no shell ever running it.
pub fn parse_line(line: &str) -> Result<Vec<String>, String> {
    let line = line.trim();
    if line.starts_with('[') {
        return serde_json::from_str(line).map_err(|e| {
            format!(
                "`{}` is not a list of strings: {e}.",
                crate::vocab::clip(line)
            )
        });
    }
    // shlex is the tested splitter; hand-splitting quotes is where such bugs live.
    shlex::split(line)
        .ok_or_else(|| format!("`{}` has an unclosed quote.", crate::vocab::clip(line)))
}

/// A command as one form line (round-trips through [`parse_line`]).
pub fn show_line(command: &[String]) -> String {
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    shlex::try_join(words).unwrap_or_else(|_| serde_json::to_string(command).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn bad_commands_are_refused_with_the_reason() {
        let path = DEFAULT_PATH;
        assert!(check_command(&[], path).unwrap_err().contains("empty"));
        assert!(check_command(&cmd(&[" "]), path)
            .unwrap_err()
            .contains("program name is empty"));
        assert!(check_command(&cmd(&["no-such-program-xyz"]), path)
            .unwrap_err()
            .contains("not found"));
        assert!(check_command(&cmd(&["sh", "a\0b"]), path)
            .unwrap_err()
            .contains("NUL"));
        let many: Vec<String> = (0..70).map(|i| i.to_string()).collect();
        let mut long = cmd(&["sh"]);
        long.extend(many);
        assert!(check_command(&long, path).unwrap_err().contains("at most"));
        let huge = cmd(&["sh", &"x".repeat(5000)]);
        assert!(check_command(&huge, path)
            .unwrap_err()
            .contains("characters"));
        assert!(check_command(&cmd(&["sh", "-c", "true"]), path).is_ok());
        assert!(check_command(&cmd(&["bin/build", "--prod"]), path).is_ok());
        assert!(check_command(&cmd(&["/bin/true"]), path).is_ok());
        assert!(check_command(&cmd(&["/no/such/tool"]), path)
            .unwrap_err()
            .contains("does not exist"));
    }

    #[test]
    fn every_problem_is_named_with_its_stage_and_place() {
        let steps = Steps {
            before_switch: vec![cmd(&["true"]), vec![]],
            after_switch: vec![cmd(&["missing-xyz"])],
            ..Steps::default()
        };
        let m = steps.check(DEFAULT_PATH).unwrap_err();
        assert!(m.contains("steps.before_switch[2]"), "{m}");
        assert!(m.contains("steps.after_switch[1]"), "{m}");
    }

    #[test]
    fn form_lines_split_like_a_shell_and_round_trip() {
        let c = parse_line(r#"php artisan "cache:clear" --env='prod x'"#).unwrap();
        assert_eq!(c, cmd(&["php", "artisan", "cache:clear", "--env=prod x"]));
        assert_eq!(parse_line(&show_line(&c)).unwrap(), c);
        assert_eq!(
            parse_line(r#"["sh", "-c", "echo $HOME"]"#).unwrap(),
            cmd(&["sh", "-c", "echo $HOME"])
        );
        assert!(parse_line("echo 'open").is_err());
        // No expansion: the words are the program's arguments as typed.
        assert_eq!(
            parse_line("echo $HOME *").unwrap(),
            cmd(&["echo", "$HOME", "*"])
        );
    }
}
