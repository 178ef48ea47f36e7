//! Managing accounts and API tokens: every change is audited in the same transaction.

use serde_json::json;

use super::password::{check_rules, Password, Verdict};
use super::secret::{hash_secret, random_password, random_token};
use super::{Auth, Identity, Role, UserName, Via};
use crate::audit::{self, Event, Outcome, Source};
use crate::db::{self, sessions, tokens, users};
use crate::error::code;
use crate::error::{AppError, AppResult};

/// Prefix of every API token, so a leaked one is recognisable (e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "cutover_";

/// Length of generated first-run and reset passwords.
const GENERATED_PASSWORD_LEN: usize = 20;

/// Validates a token label: it appears in audit actors, so it is kept plain.
pub fn parse_label(raw: &str) -> AppResult<String> {
    let label = raw.trim();
    let ok = (1..=64).contains(&label.len())
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._-".contains(c));
    if ok {
        Ok(label.to_owned())
    } else {
        Err(AppError::invalid(
            code::INVALID_LABEL,
            "A token label is 1 to 64 characters: letters, digits, spaces, dots, underscores or hyphens.",
        ))
    }
}

fn name_or_invalid(raw: &str) -> AppResult<UserName> {
    UserName::parse(raw).map_err(|m| AppError::invalid(code::INVALID_USER_NAME, m))
}

impl Auth {
    /// Creates a user. Without a password, one is generated, returned once, and must be changed
    /// at first log-in.
    pub async fn create_user(
        &self,
        actor: &str,
        source: &Source,
        raw_name: &str,
        role: Role,
        password: Option<Password>,
    ) -> AppResult<Option<String>> {
        let name = name_or_invalid(raw_name)?;
        let (password, generated) = match password {
            Some(p) => {
                check_rules(&p, name.as_str())
                    .map_err(|m| AppError::invalid(code::WEAK_PASSWORD, m))?;
                (p, None)
            }
            None => {
                let p = random_password(GENERATED_PASSWORD_LEN);
                (Password::new(p.clone()), Some(p))
            }
        };
        let hash = self.hasher.hash(&password).await?;
        let mut tx = db::begin_write(&self.pool).await?;
        if users::insert(&mut tx, name.as_str(), role, &hash, generated.is_some())
            .await?
            .is_none()
        {
            return Err(AppError::Conflict {
                code: code::USER_EXISTS,
                message: format!("A user named {name} already exists. Pick another name."),
            });
        }
        audit::record(
            &mut tx,
            &Event::new(actor, "user_create", Outcome::Ok)
                .source(source)
                .detail(json!({"user": name.as_str(), "role": role.as_str()})),
        )
        .await?;
        tx.commit().await?;
        Ok(generated)
    }

    async fn target(&self, raw_name: &str) -> AppResult<users::UserRow> {
        users::find_by_name(&self.pool, raw_name.trim())
            .await?
            .ok_or_else(|| {
                AppError::NotFound(format!("There is no user named {}.", raw_name.trim()))
            })
    }

    /// Changes the caller's own password; needs the current one. Ends their other sessions.
    pub async fn change_own_password(
        &self,
        who: &Identity,
        current: &Password,
        new: &Password,
        source: &Source,
    ) -> AppResult<()> {
        let me = self.target(&who.name).await?;
        if self.hasher.verify(current, Some(&me.password_hash)).await? == Verdict::Wrong {
            audit::record_alone(
                &self.pool,
                &Event::new(who.actor(), "password_change", Outcome::Failed)
                    .source(source)
                    .detail(json!({"reason": "current password wrong"})),
            )
            .await?;
            return Err(AppError::invalid(
                code::WRONG_PASSWORD,
                "The current password is wrong.",
            ));
        }
        check_rules(new, &me.name).map_err(|m| AppError::invalid(code::WEAK_PASSWORD, m))?;
        // Also catches keeping a generated one-time password, which was shown on a screen.
        if crate::auth::secret::same_secret(new.expose(), current.expose()) {
            return Err(AppError::invalid(
                code::SAME_PASSWORD,
                "The new password is the same as the current one. Choose a different one.",
            ));
        }
        let hash = self.hasher.hash(new).await?;
        let keep = match who.via {
            Via::Session { session_id, .. } => Some(session_id),
            Via::Token { .. } => None,
        };
        let mut tx = db::begin_write(&self.pool).await?;
        users::set_password(&mut tx, me.id, &hash, false).await?;
        let ended = sessions::delete_for_user(&mut tx, me.id, keep).await?;
        audit::record(
            &mut tx,
            &Event::new(who.actor(), "password_change", Outcome::Ok)
                .source(source)
                .detail(json!({"user": me.name, "other_sessions_ended": ended})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Admin: gives `name` a new generated password (returned once) and ends their sessions.
    pub async fn reset_password(
        &self,
        actor: &str,
        source: &Source,
        name: &str,
    ) -> AppResult<String> {
        let user = self.target(name).await?;
        let password = random_password(GENERATED_PASSWORD_LEN);
        let hash = self.hasher.hash(&Password::new(password.clone())).await?;
        let mut tx = db::begin_write(&self.pool).await?;
        users::set_password(&mut tx, user.id, &hash, true).await?;
        let ended = sessions::delete_for_user(&mut tx, user.id, None).await?;
        audit::record(
            &mut tx,
            &Event::new(actor, "password_reset", Outcome::Ok)
                .source(source)
                .detail(json!({"user": user.name, "sessions_ended": ended})),
        )
        .await?;
        tx.commit().await?;
        Ok(password)
    }

    /// Admin: changes a user's role. The last enabled admin cannot be demoted.
    pub async fn set_role(
        &self,
        actor: &str,
        source: &Source,
        name: &str,
        role: Role,
    ) -> AppResult<()> {
        let user = self.target(name).await?;
        let mut tx = db::begin_write(&self.pool).await?;
        if user.role == Role::Admin
            && role != Role::Admin
            && !user.disabled
            && users::enabled_admins(&mut tx).await? <= 1
        {
            return Err(last_admin());
        }
        users::set_role(&mut tx, user.id, role).await?;
        audit::record(
            &mut tx,
            &Event::new(actor, "user_role", Outcome::Ok)
                .source(source)
                .detail(
                    json!({"user": user.name, "from": user.role.as_str(), "to": role.as_str()}),
                ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Admin: disables (ending every session at once) or enables a user.
    pub async fn set_disabled(
        &self,
        who: &Identity,
        source: &Source,
        name: &str,
        disabled: bool,
    ) -> AppResult<()> {
        let user = self.target(name).await?;
        if disabled && user.id == who.user_id {
            return Err(AppError::invalid(
                code::CANNOT_DISABLE_SELF,
                "You cannot disable your own account.",
            ));
        }
        let mut tx = db::begin_write(&self.pool).await?;
        if disabled
            && user.role == Role::Admin
            && !user.disabled
            && users::enabled_admins(&mut tx).await? <= 1
        {
            return Err(last_admin());
        }
        users::set_disabled(&mut tx, user.id, disabled).await?;
        // Disabling ends sessions and tokens for good: enabling the account again must not
        // bring back a token that may be why it was disabled.
        let (ended, revoked) = if disabled {
            let ended = sessions::delete_for_user(&mut tx, user.id, None).await?;
            (ended, tokens::revoke_all(&mut tx, user.id).await?)
        } else {
            (0, 0)
        };
        let action = if disabled {
            "user_disable"
        } else {
            "user_enable"
        };
        audit::record(
            &mut tx,
            &Event::new(who.actor(), action, Outcome::Ok)
                .source(source)
                .detail(
                    json!({"user": user.name, "sessions_ended": ended, "tokens_revoked": revoked}),
                ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Admin: revokes every token of `name` at once (e.g. after a password reset); returns
    /// how many were revoked.
    pub async fn revoke_all_tokens(
        &self,
        actor: &str,
        source: &Source,
        name: &str,
    ) -> AppResult<u64> {
        let user = self.target(name).await?;
        let mut tx = db::begin_write(&self.pool).await?;
        let count = tokens::revoke_all(&mut tx, user.id).await?;
        audit::record(
            &mut tx,
            &Event::new(actor, "token_revoke_all", Outcome::Ok)
                .source(source)
                .detail(json!({"user": user.name, "count": count})),
        )
        .await?;
        tx.commit().await?;
        Ok(count)
    }

    /// Creates an API token for `owner`; returns the secret, which is not kept.
    pub async fn create_token(
        &self,
        actor: &str,
        source: &Source,
        owner: &str,
        label: &str,
    ) -> AppResult<String> {
        self.create_token_expiring(actor, source, owner, label, None)
            .await
    }

    /// [`Auth::create_token`], ending after `days` days when given (default: never).
    pub async fn create_token_expiring(
        &self,
        actor: &str,
        source: &Source,
        owner: &str,
        label: &str,
        days: Option<u32>,
    ) -> AppResult<String> {
        let label = parse_label(label)?;
        if days == Some(0) {
            return Err(AppError::invalid(
                code::INVALID_EXPIRY,
                "A token must last at least one day.",
            ));
        }
        let expires_at = days.map(|d| db::now_unix() + i64::from(d) * 86_400);
        let user = self.target(owner).await?;
        if user.disabled {
            return Err(AppError::invalid(
                code::USER_DISABLED,
                format!("{} is disabled: enable the account first.", user.name),
            ));
        }
        let secret = format!("{TOKEN_PREFIX}{}", random_token());
        let mut tx = db::begin_write(&self.pool).await?;
        let id = tokens::insert(
            &mut tx,
            user.id,
            &label,
            &hash_secret("token", &secret),
            actor,
        )
        .await?;
        if let Some(at) = expires_at {
            tokens::set_expiry(&mut tx, id, at).await?;
        }
        audit::record(
            &mut tx,
            &Event::new(actor, "token_create", Outcome::Ok)
                .source(source)
                .detail(json!({"user": user.name, "token": id, "label": label, "expires_at": expires_at})),
        )
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// Revokes token `id` of `owner_id`.
    pub async fn revoke_token(
        &self,
        actor: &str,
        source: &Source,
        owner_id: i64,
        id: i64,
    ) -> AppResult<()> {
        let mut tx = db::begin_write(&self.pool).await?;
        if !tokens::revoke(&mut tx, id, owner_id).await? {
            return Err(AppError::NotFound(
                "That token does not exist or is already revoked.".into(),
            ));
        }
        audit::record(
            &mut tx,
            &Event::new(actor, "token_revoke", Outcome::Ok)
                .source(source)
                .detail(json!({"user_id": owner_id, "token": id})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// First run: with no users at all, creates `admin` with a generated password and returns it.
    pub async fn bootstrap_admin(&self) -> AppResult<Option<String>> {
        if users::count(&self.pool).await? > 0 {
            return Ok(None);
        }
        self.create_user("system", &Source::default(), "admin", Role::Admin, None)
            .await
    }
}

fn last_admin() -> AppError {
    AppError::Conflict {
        code: code::LAST_ADMIN,
        message: "This is the last enabled admin: make another user admin first.".into(),
    }
}
