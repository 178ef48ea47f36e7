//! Walks the chain and reports the first event that does not check out.

use anyhow::Context;
use futures_util::TryStreamExt;
use sqlx::{FromRow, SqlitePool};

use super::chain::{Canonical, GENESIS};
use super::checkpoint::Checkpoint;
use super::integrity;

/// The verdict on the whole log.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// Every event checks out; this many.
    Intact { events: u64 },
    /// The first problem found, with the event id where it shows.
    Broken { at_id: i64, reason: String },
}

#[derive(FromRow)]
struct Row {
    id: i64,
    at: String,
    actor: String,
    ip: Option<String>,
    user_agent: Option<String>,
    action: String,
    site: Option<String>,
    release: Option<String>,
    outcome: String,
    detail: String,
    request_id: Option<String>,
    prev_hash: String,
    hash: String,
}

/// Recomputes every hash in id order (streamed: constant memory at any size), after checking
/// the append-only triggers; the log must start with a first run's events.
#[tracing::instrument(skip_all)]
pub async fn verify(pool: &SqlitePool) -> anyhow::Result<Verification> {
    verify_against(pool, &[]).await
}

/// [`verify`], and each checkpoint (taken earlier, kept elsewhere) must still be in the log
/// with the same hash: proof that everything up to it is exactly as it was.
pub async fn verify_against(
    pool: &SqlitePool,
    checkpoints: &[Checkpoint],
) -> anyhow::Result<Verification> {
    let verdict = walk(pool, checkpoints).await?;
    // The first bad event is the more telling answer; missing triggers are reported otherwise.
    if let Verification::Intact { .. } = verdict {
        if let Some(reason) = integrity::triggers_problem(pool).await? {
            return Ok(Verification::Broken { at_id: 0, reason });
        }
    }
    Ok(verdict)
}

async fn walk(pool: &SqlitePool, checkpoints: &[Checkpoint]) -> anyhow::Result<Verification> {
    // The head first, then the events up to it: events appended while we walk are newer than
    // what we check, and must not look like a cut-off end.
    let head: Option<(i64, String)> = sqlx::query_as("SELECT last_id, last_hash FROM audit_head")
        .fetch_optional(pool)
        .await
        .context("reading the audit log head")?;
    let upto = head.as_ref().map(|(id, _)| *id).unwrap_or(i64::MAX);
    let mut rows = sqlx::query_as::<_, Row>("SELECT * FROM audit_events WHERE id <= ? ORDER BY id")
        .bind(upto)
        .fetch(pool);
    let mut prev = GENESIS.to_owned();
    let mut expected_id = 1i64;
    let mut count = 0u64;
    while let Some(r) = rows.try_next().await.context("reading the audit log")? {
        let broken = |reason: &str| Verification::Broken {
            at_id: r.id,
            reason: reason.into(),
        };
        if r.id != expected_id {
            return Ok(Verification::Broken {
                at_id: r.id,
                reason: format!(
                    "event {expected_id} is missing (the next one found is {})",
                    r.id
                ),
            });
        }
        if r.id == 1 {
            if let Some(reason) = integrity::first_event_problem(&r.action, &r.prev_hash) {
                return Ok(broken(&reason));
            }
        }
        if r.prev_hash != prev {
            return Ok(broken(
                "it does not follow the event before it (removed or reordered events)",
            ));
        }
        let canonical = Canonical {
            id: r.id,
            at: &r.at,
            actor: &r.actor,
            ip: r.ip.as_deref(),
            user_agent: r.user_agent.as_deref(),
            action: &r.action,
            site: r.site.as_deref(),
            release: r.release.as_deref(),
            outcome: &r.outcome,
            detail: &r.detail,
            request_id: r.request_id.as_deref(),
        };
        if canonical.chain_hash(&prev) != r.hash {
            return Ok(broken("its content was changed after it was recorded"));
        }
        if let Some(cp) = checkpoints
            .iter()
            .find(|c| c.id == r.id && c.hash != r.hash)
        {
            return Ok(broken(&format!(
                "it does not match the checkpoint {cp}: the log up to it was rewritten"
            )));
        }
        prev = r.hash;
        expected_id += 1;
        count += 1;
    }
    drop(rows);
    let last_id = expected_id - 1;
    if let Some(cp) = checkpoints
        .iter()
        .filter(|c| c.id > last_id)
        .min_by_key(|c| c.id)
    {
        return Ok(Verification::Broken {
            at_id: cp.id,
            reason: format!(
                "event {} of the checkpoint {cp} is no longer in the log (it ends at event {last_id}): events were removed",
                cp.id
            ),
        });
    }
    match head {
        None if count == 0 => Ok(Verification::Broken {
            at_id: 0,
            reason: format!(
                "the log is empty, but every database starts it with '{}': it was wiped",
                integrity::CREATED
            ),
        }),
        Some((id, hash)) if id == last_id && hash == prev => Ok(Verification::Intact { events: count }),
        Some((id, _)) => Ok(Verification::Broken {
            at_id: id,
            reason: format!("the log ends at event {last_id}, but event {id} was recorded (events cut off the end)"),
        }),
        None => Ok(Verification::Broken {
            at_id: last_id,
            reason: "the record of the newest event is missing".into(),
        }),
    }
}
