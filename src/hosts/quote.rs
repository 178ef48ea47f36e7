//! Quoting a command for the remote shell: every word of every remote operation passes here.

use anyhow::Context as _;

/// Quotes `argv` for the remote shell: `ssh` joins its arguments with spaces and the remote
/// user's shell splits them again, so each word is single-quoted as POSIX sh reads it
/// (shlex). A NUL cannot be passed at all and is refused.
pub fn remote_command(argv: &[String]) -> anyhow::Result<String> {
    anyhow::ensure!(!argv.is_empty(), "no command");
    shlex::try_join(argv.iter().map(String::as_str)).context("a word holds a NUL")
}

#[cfg(test)]
mod tests {
    use crate::hosts::quote::*;

    /// What `sh` makes of the quoted line is exactly the list we started with.
    #[test]
    fn remote_commands_reach_the_remote_shell_word_for_word() {
        let words: Vec<String> = [
            "printf",
            "%s\\n",
            "a b",
            "it's",
            "$(id)",
            "`id`",
            "; rm -rf /",
            "\"q\"",
            "back\\slash",
            "new\nline",
            "",
            "*",
            "-n",
            "ünïcode",
        ]
        .map(String::from)
        .to_vec();
        let line = remote_command(&words).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .output()
            .unwrap();
        let printed = String::from_utf8(out.stdout).unwrap();
        let expected: String = words[2..].iter().map(|w| format!("{w}\n")).collect();
        assert_eq!(printed, expected);
        assert!(remote_command(&["a\0b".to_owned()]).is_err());
        assert!(remote_command(&[]).is_err());
    }
}
