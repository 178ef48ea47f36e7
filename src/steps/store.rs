//! The `step_runs` table: every run of a site's command, what came of it, and at start-up the
//! runs a killed console left open (their process groups stopped, the runs marked interrupted).

use serde::Serialize;
use serde_json::json;
use sqlx::{FromRow, SqlitePool};

use super::run::StepResult;
use super::Stage;
use crate::audit::{self, Event, Outcome};
use crate::error::AppResult;

/// One run of a step, as kept.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct StepRun {
    /// Row id.
    pub id: i64,
    /// The release it ran for.
    pub release_id: String,
    /// `after_unpack`, `before_switch`, `after_switch`.
    pub stage: String,
    /// JSON array.
    pub command: String,
    /// The user it ran as.
    pub run_as: String,
    /// Who caused it (the upload's or the switch's actor).
    pub actor: String,
    /// RFC 3339.
    pub started_at: String,
    /// `running`, `ok`, `failed`, `timed_out`, `interrupted`.
    pub outcome: String,
    /// Its exit status, when it exited.
    pub exit_code: Option<i64>,
    /// One sentence.
    pub summary: String,
    /// Kept output.
    pub output: String,
    /// Bytes it wrote.
    pub output_bytes: i64,
    /// Duration.
    pub ms: Option<i64>,
}

impl StepRun {
    /// Its duration in milliseconds (0 while running or never started).
    pub fn took_ms(&self) -> u64 {
        self.ms.unwrap_or(0).max(0) as u64
    }

    /// The command as one line.
    pub fn command_line(&self) -> String {
        let words: Vec<String> = serde_json::from_str(&self.command).unwrap_or_default();
        super::show_line(&words)
    }
}

/// What this run is, before it starts.
pub struct Begin<'a> {
    /// Site row id.
    pub site_id: i64,
    /// Release id.
    pub release: &'a str,
    /// Its stage.
    pub stage: Stage,
    /// Program and arguments.
    pub command: &'a [String],
    /// User name it runs as.
    pub run_as: &'a str,
    /// Audit actor.
    pub actor: &'a str,
}

/// Records a run about to start; returns its row id.
pub async fn begin(pool: &SqlitePool, b: &Begin<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("INSERT INTO step_runs (site_id, release_id, stage, command, run_as, actor, boot_id, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id")
        .bind(b.site_id)
        .bind(b.release)
        .bind(b.stage.as_str())
        .bind(serde_json::to_string(b.command).unwrap_or_default())
        .bind(b.run_as)
        .bind(b.actor)
        .bind(boot_id())
        .bind(audit::now_text())
        .fetch_one(pool)
        .await
}

/// The process group of a started run (what a later start stops if the console dies).
pub async fn started(pool: &SqlitePool, id: i64, pgid: i32) -> sqlx::Result<()> {
    sqlx::query("UPDATE step_runs SET pgid = ? WHERE id = ?")
        .bind(pgid)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}

/// What came of a run.
pub async fn finish(pool: &SqlitePool, id: i64, r: &StepResult) -> sqlx::Result<()> {
    sqlx::query("UPDATE step_runs SET ended_at = ?, outcome = ?, exit_code = ?, summary = ?, output = ?, output_bytes = ?, ms = ? WHERE id = ?")
        .bind(audit::now_text())
        .bind(r.outcome.as_str())
        .bind(r.exit)
        .bind(&r.summary)
        .bind(&r.output)
        .bind(r.output_bytes as i64)
        .bind(r.ms as i64)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Every run for a release, oldest first (the release page).
pub async fn for_release(
    pool: &SqlitePool,
    site_id: i64,
    release: &str,
) -> sqlx::Result<Vec<StepRun>> {
    sqlx::query_as("SELECT id, release_id, stage, command, run_as, actor, started_at, outcome, exit_code, summary, output, output_bytes, ms FROM step_runs WHERE site_id = ? AND release_id = ? ORDER BY id LIMIT 500")
        .bind(site_id)
        .bind(release)
        .fetch_all(pool)
        .await
}

/// How long the switch steps of `release` took the last time they ran, in milliseconds (the
/// rollback page says what tapping will run); `None` when they never ran.
pub async fn last_switch_ms(
    pool: &SqlitePool,
    site_id: i64,
    release: &str,
) -> sqlx::Result<Option<i64>> {
    // The newest run of each switch-stage command for this release.
    sqlx::query_scalar("SELECT SUM(ms) FROM step_runs WHERE id IN (SELECT MAX(id) FROM step_runs WHERE site_id = ? AND release_id = ? AND stage != 'after_unpack' AND ms IS NOT NULL GROUP BY stage, command)")
        .bind(site_id)
        .bind(release)
        .fetch_one(pool)
        .await
}

/// This boot of the machine: a process group recorded before a reboot is not ours to stop.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A run left open: id, process group, boot id, site, release, stage, command.
type OpenRun = (
    i64,
    Option<i64>,
    Option<String>,
    String,
    String,
    String,
    String,
);

/// At start-up: every run still marked running belonged to a console that was killed. Its
/// process group is stopped (the step itself died with the console; what it started may
/// not have), the run is marked interrupted, and the audit log says so.
pub async fn recover(pool: &SqlitePool) -> AppResult<usize> {
    let open: Vec<OpenRun> = sqlx::query_as(
        "SELECT r.id, r.pgid, r.boot_id, s.name, r.release_id, r.stage, r.command FROM step_runs r JOIN sites s ON s.id = r.site_id WHERE r.outcome = 'running'",
    )
    .fetch_all(pool)
    .await?;
    let boot = boot_id();
    for (id, pgid, run_boot, site, release, stage, command) in &open {
        let ours = run_boot.as_deref() == Some(boot.as_str()) && !boot.is_empty();
        let stopped = match (ours, pgid) {
            (true, Some(g)) if *g > 1 => nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(*g as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok(),
            _ => false,
        };
        let summary = match stopped {
            true => "interrupted: the console stopped while this step ran; the processes it had left were stopped at the next start",
            false => "interrupted: the console stopped while this step ran",
        };
        sqlx::query(
            "UPDATE step_runs SET outcome = 'interrupted', summary = ?, ended_at = ? WHERE id = ?",
        )
        .bind(summary)
        .bind(audit::now_text())
        .bind(id)
        .execute(pool)
        .await?;
        let command: serde_json::Value = serde_json::from_str(command).unwrap_or_default();
        let event = Event::new("system", "step", Outcome::Interrupted)
            .site(site)
            .release(release)
            .detail(json!({"stage": stage, "command": command, "reason": summary, "stopped_leftovers": stopped}));
        audit::record_alone(pool, &event).await?;
    }
    Ok(open.len())
}
