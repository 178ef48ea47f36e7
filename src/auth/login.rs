//! Logging in and out, and recognising a session or an API token on each request.

use std::net::IpAddr;

use serde_json::json;

use super::password::{Password, Verdict};
use super::secret::{hash_secret, random_token};
use super::{csrf, Auth, Identity, Via};
use crate::audit::{self, Event, Outcome, Source};
use crate::db::{self, sessions, tokens, users};
use crate::error::code;
use crate::error::{AppError, AppResult};

/// What a successful log-in hands back: the cookie's secret (given to the browser only).
pub struct NewSession {
    /// The session secret for the cookie.
    pub secret: String,
    /// Whether the user must choose a new password before anything else.
    pub must_change_password: bool,
}

/// The same answer for an unknown user, a wrong password and a disabled account.
fn wrong() -> AppError {
    AppError::Invalid {
        code: code::WRONG_CREDENTIALS,
        message: "The user name or password is wrong. Check them and try again.".into(),
    }
}

impl Auth {
    /// Checks a user name and password, subject to throttling; on success starts a new session
    /// (a fresh secret: an id planted before log-in is worthless) and ends `old_secret`'s.
    pub async fn login(
        &self,
        typed_name: &str,
        password: &Password,
        ip: IpAddr,
        source: &Source,
        old_secret: Option<&str>,
    ) -> AppResult<NewSession> {
        let name = typed_name.trim().to_lowercase();
        // Record what was typed only when it is a valid name: typed text may be a password.
        let logged_name = super::UserName::parse(&name)
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "(invalid name)".into());
        let attempt = match self.throttle.try_attempt(&name, ip) {
            Ok(a) => a,
            Err(wait) => {
                let secs = wait.as_secs().max(1);
                self.refusals
                .record(
                    &self.pool,
                    Event::new("anonymous", "login", Outcome::Denied)
                        .source(source)
                        .detail(json!({"user": logged_name, "reason": "throttled", "retry_after_seconds": secs})),
                )
                .await?;
                return Err(AppError::Throttled {
                retry_after: secs,
                message: format!(
                    "Too many failed log-ins for this account or from this address. Wait {secs} seconds, then try again."
                ),
            });
            }
        };
        let user = users::find_by_name(&self.pool, &name).await?;
        let verdict = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let user = match (user, verdict) {
            (Some(u), Verdict::Right | Verdict::RightRehashed(_)) if u.disabled => {
                attempt.failed();
                self.login_failed(&logged_name, source, "account disabled")
                    .await?;
                return Err(wrong());
            }
            (Some(u), Verdict::RightRehashed(new_hash)) => {
                let mut tx = db::begin_write(&self.pool).await?;
                users::set_password(&mut tx, u.id, &new_hash, u.must_change_password).await?;
                tx.commit().await?;
                u
            }
            (Some(u), Verdict::Right) => u,
            (_, _) => {
                attempt.failed();
                self.login_failed(&logged_name, source, "wrong user name or password")
                    .await?;
                return Err(wrong());
            }
        };
        attempt.succeeded();
        let secret = random_token();
        let mut tx = db::begin_write(&self.pool).await?;
        if let Some(old) = old_secret {
            sqlx::query("DELETE FROM sessions WHERE secret_hash = ?")
                .bind(hash_secret("session", old))
                .execute(&mut *tx)
                .await?;
        }
        let ua = source.user_agent.clone().unwrap_or_default();
        sessions::insert(
            &mut tx,
            &hash_secret("session", &secret),
            user.id,
            &ip.to_string(),
            &ua,
        )
        .await?;
        audit::record(
            &mut tx,
            &Event::new(format!("user:{}", user.name), "login", Outcome::Ok).source(source),
        )
        .await?;
        tx.commit().await?;
        Ok(NewSession {
            secret,
            must_change_password: user.must_change_password,
        })
    }

    /// Records a failed log-in (the throttle has counted it).
    async fn login_failed(&self, logged: &str, source: &Source, why: &str) -> AppResult<()> {
        self.refusals
            .record(
                &self.pool,
                Event::new("anonymous", "login", Outcome::Failed)
                    .source(source)
                    .detail(json!({"user": logged, "reason": why})),
            )
            .await?;
        Ok(())
    }

    /// The identity behind a session secret, if the session is live; an expired one is removed.
    pub async fn session_identity(&self, secret: &str) -> AppResult<Option<(Identity, bool)>> {
        let Some(s) = sessions::find(&self.pool, &hash_secret("session", secret)).await? else {
            return Ok(None);
        };
        let now = db::now_unix();
        let idle = now - s.last_seen_at > self.settings.idle_timeout_minutes as i64 * 60;
        let too_old = now - s.created_at > self.settings.absolute_timeout_hours as i64 * 3600;
        if idle || too_old || s.disabled {
            let mut tx = db::begin_write(&self.pool).await?;
            sessions::delete(&mut tx, s.session_id, s.user_id).await?;
            let why = if s.disabled {
                "user disabled"
            } else if idle {
                "idle time-out"
            } else {
                "absolute time-out"
            };
            audit::record(
                &mut tx,
                &Event::new(format!("user:{}", s.name), "session_end", Outcome::Ok)
                    .detail(json!({"reason": why})),
            )
            .await?;
            tx.commit().await?;
            return Ok(None);
        }
        // Writing on every request would serialise all readers behind SQLite's write lock.
        if now - s.last_seen_at >= 30 {
            sessions::touch(&self.pool, s.session_id).await?;
        }
        let identity = Identity {
            user_id: s.user_id,
            name: s.name,
            role: s.role,
            via: Via::Session {
                session_id: s.session_id,
                csrf_token: csrf::token_for_session(secret),
            },
        };
        Ok(Some((identity, s.must_change_password)))
    }

    /// The identity behind an API token, if it is valid; records its use.
    pub async fn token_identity(&self, secret: &str) -> AppResult<Option<Identity>> {
        let Some(t) = tokens::find_usable(&self.pool, &hash_secret("token", secret)).await? else {
            return Ok(None);
        };
        if t.last_used_at.is_none_or(|at| db::now_unix() - at >= 30) {
            tokens::touch(&self.pool, t.token_id).await?;
        }
        Ok(Some(Identity {
            user_id: t.user_id,
            name: t.name,
            role: t.role,
            via: Via::Token {
                token_id: t.token_id,
                label: t.label,
            },
        }))
    }

    /// Ends the caller's session.
    pub async fn logout(&self, who: &Identity, source: &Source) -> AppResult<()> {
        let Via::Session { session_id, .. } = who.via else {
            return Err(AppError::invalid(
                code::NOT_A_SESSION,
                "Only a browser session can log out.",
            ));
        };
        let mut tx = db::begin_write(&self.pool).await?;
        sessions::delete(&mut tx, session_id, who.user_id).await?;
        audit::record(
            &mut tx,
            &Event::new(who.actor(), "logout", Outcome::Ok).source(source),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends one of the caller's own sessions (e.g. a forgotten one on another device).
    pub async fn end_own_session(
        &self,
        who: &Identity,
        session_id: i64,
        source: &Source,
    ) -> AppResult<()> {
        let mut tx = db::begin_write(&self.pool).await?;
        if !sessions::delete(&mut tx, session_id, who.user_id).await? {
            return Err(AppError::NotFound("That session has already ended.".into()));
        }
        audit::record(
            &mut tx,
            &Event::new(who.actor(), "session_end", Outcome::Ok)
                .source(source)
                .detail(json!({"reason": "ended by its owner", "session": session_id})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
