//! Running a site's command for a release: as whom, with which environment, recorded before
//! it starts (so a crash leaves a trace to clean up) and after it ends, and audited.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::SqlitePool;

use super::run::{tail, Output, Run, StepResult};
use super::store::{self, Begin};
use super::{find_program, Stage, StepSettings};
use crate::audit::{self, Event, Outcome as AuditOutcome, Source};
use crate::sites::{Site, SitePaths};

/// Characters of a step's output the audit event keeps (the whole kept output is in the
/// step's record on the release page).
pub const AUDIT_TAIL_CHARS: usize = 2000;

/// Runs steps: shared by uploads and switches.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The database.
    pub pool: SqlitePool,
    /// `[steps]`.
    pub settings: StepSettings,
    /// `<data_dir>/steps`: each site's HOME for its steps.
    pub home_root: PathBuf,
}

/// One stage of one release.
pub struct Job<'a> {
    /// The site.
    pub site: &'a Site,
    /// Its folders.
    pub paths: &'a SitePaths,
    /// The release the step runs for (and in).
    pub release: &'a str,
    /// The release live before (empty in the environment when none).
    pub previous: Option<&'a str>,
    /// The stage.
    pub stage: Stage,
    /// Who caused it.
    pub actor: &'a str,
    /// From where.
    pub source: &'a Source,
}

impl Runner {
    /// The user steps run as: (name, uid, gid); `None` runs them as the console itself.
    pub fn user(&self) -> Result<Option<(String, u32, u32)>, String> {
        let Some(name) = self.settings.run_as() else {
            return Ok(None);
        };
        match nix::unistd::User::from_name(&name) {
            Ok(Some(u)) if !u.uid.is_root() => Ok(Some((name, u.uid.as_raw(), u.gid.as_raw()))),
            _ => Err(format!("the user {name} that steps run as does not exist on this machine (set [steps] user)")),
        }
    }

    /// The name shown for who a step runs as.
    fn user_name(user: &Option<(String, u32, u32)>) -> String {
        match user {
            Some((n, _, _)) => n.clone(),
            None => nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| "the console's user".into()),
        }
    }

    /// The whole environment of a step: nothing of the console's own.
    fn environment(&self, job: &Job<'_>, home: &Path) -> Vec<(String, String)> {
        let dir = job.paths.release(job.release);
        vec![
            ("PATH".into(), self.settings.path.clone()),
            ("HOME".into(), home.display().to_string()),
            ("LANG".into(), "C.UTF-8".into()),
            ("CUTOVER_SITE".into(), job.site.name.clone()),
            ("CUTOVER_RELEASE".into(), job.release.to_owned()),
            (
                "CUTOVER_PREVIOUS_RELEASE".into(),
                job.previous.unwrap_or_default().to_owned(),
            ),
            ("CUTOVER_RELEASE_DIR".into(), dir.display().to_string()),
            (
                "CUTOVER_SHARED_DIR".into(),
                job.paths.shared().display().to_string(),
            ),
            ("CUTOVER_STAGE".into(), job.stage.as_str().to_owned()),
        ]
    }

    /// The site's HOME for steps, owned by the step user, private to it.
    fn home(&self, site: &str, user: &Option<(String, u32, u32)>) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let home = self.home_root.join("home").join(site);
        std::fs::create_dir_all(&home)?;
        if let Some((_, uid, gid)) = user {
            std::os::unix::fs::chown(&home, Some(*uid), Some(*gid))?;
        }
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))?;
        Ok(home)
    }

    /// Runs one command of `job`, its output arriving in `output` while it runs.
    pub async fn run(
        &self,
        job: &Job<'_>,
        command: &[String],
        output: Arc<Mutex<Output>>,
    ) -> StepResult {
        let user = self.user();
        let run_as = user
            .as_ref()
            .map(Self::user_name)
            .unwrap_or_else(|m| m.clone());
        let begin = Begin {
            site_id: job.site.id,
            release: job.release,
            stage: job.stage,
            command,
            run_as: &run_as,
            actor: job.actor,
        };
        let id = store::begin(&self.pool, &begin).await.ok();
        let result = self.start_and_wait(job, command, user, output, id).await;
        if let Some(id) = id {
            if let Err(e) = store::finish(&self.pool, id, &result).await {
                tracing::error!(error = ?e, "a step's result could not be recorded");
            }
        }
        let outcome = match result.outcome {
            super::run::Outcome::Ok => AuditOutcome::Ok,
            _ => AuditOutcome::Failed,
        };
        let event = Event::new(job.actor, "step", outcome)
            .source(job.source)
            .site(&job.site.name)
            .release(job.release)
            .detail(json!({
                "stage": job.stage.as_str(), "command": command, "run_as": run_as,
                "exit": result.exit, "result": result.summary, "ms": result.ms,
                "output_bytes": result.output_bytes, "output_tail": tail(&result.output, AUDIT_TAIL_CHARS),
            }));
        if let Err(e) = audit::record_alone(&self.pool, &event).await {
            tracing::error!(error = ?e, "a step's audit event could not be recorded");
        }
        result
    }

    async fn start_and_wait(
        &self,
        job: &Job<'_>,
        command: &[String],
        user: Result<Option<(String, u32, u32)>, String>,
        output: Arc<Mutex<Output>>,
        id: Option<i64>,
    ) -> StepResult {
        let user = match user {
            Ok(u) => u,
            Err(m) => return not_started(m),
        };
        let home = match self.home(&job.site.name, &user) {
            Ok(h) => h,
            Err(e) => return not_started(format!("its home folder could not be prepared: {e}")),
        };
        let dir = job.paths.release(job.release);
        let Some(program) = resolve(&command[0], &dir, &self.settings.path) else {
            return not_started(format!(
                "the program `{}` was not found",
                crate::vocab::clip(&command[0])
            ));
        };
        let mut argv = command.to_vec();
        argv[0] = program.display().to_string();
        let limit = Duration::from_secs(job.site.settings.config.step_timeout_seconds);
        let run = Run {
            command: &argv,
            dir: &dir,
            env: self.environment(job, &home),
            user: user.as_ref().map(|(_, u, g)| (*u, *g)),
            limit,
        };
        let started = match run.start() {
            Ok(s) => s,
            Err(e) => return not_started(format!("it could not be started: {e}")),
        };
        if let Some(id) = id {
            let _ = store::started(&self.pool, id, started.pgid).await;
        }
        match job.stage {
            Stage::AfterUnpack => crate::fault_point!("step_after_unpack"),
            Stage::BeforeSwitch => crate::fault_point!("step_before_switch"),
            Stage::AfterSwitch => crate::fault_point!("step_after_switch"),
        }
        started.finish(limit, output).await
    }

    /// Hands a release tree to the step user for its build (`after_unpack` writes into it).
    pub fn lend_tree(&self, dir: &Path) -> std::io::Result<()> {
        match self.user() {
            Ok(Some((_, uid, gid))) => chown_tree(dir, uid, gid),
            _ => Ok(()),
        }
    }

    /// Takes the tree back after the build: from then on the release is the console's, and
    /// no step or site process can change what was checked and will be served.
    pub fn take_back_tree(&self, dir: &Path) -> std::io::Result<()> {
        match self.user() {
            Ok(Some(_)) => {
                let (uid, gid) = (
                    nix::unistd::geteuid().as_raw(),
                    nix::unistd::getegid().as_raw(),
                );
                chown_tree(dir, uid, gid)
            }
            _ => Ok(()),
        }
    }
}

/// A program named without `/` from the steps' PATH; one with a `/` as an absolute path or a
/// path inside the release.
fn resolve(program: &str, release_dir: &Path, search_path: &str) -> Option<PathBuf> {
    if program.starts_with('/') {
        return Some(PathBuf::from(program));
    }
    if program.contains('/') {
        return Some(release_dir.join(program));
    }
    find_program(program, search_path)
}

/// Every entry under `dir` (not following links) to `uid:gid`.
fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            chown_tree(&path, uid, gid)?;
        } else {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

fn not_started(why: String) -> StepResult {
    StepResult {
        outcome: super::run::Outcome::Failed,
        exit: None,
        summary: format!("not started: {why}"),
        output: String::new(),
        output_bytes: 0,
        ms: 0,
    }
}
