//! The signed-in user's own account: password, sessions, API tokens.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::password::Password;
use crate::auth::{Identity, Via};
use crate::db::{sessions, tokens};
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::web::client::ClientInfo;
use crate::web::layout::{render, rfc3339, see_other, PageCtx};
use crate::web::AppState;

/// A session line on the account page.
pub(crate) struct SessionView {
    id: i64,
    this_one: bool,
    started: String,
    last_seen: String,
    ip: String,
    user_agent: String,
}

/// A token line, on this page and the admin's user page.
pub(crate) struct TokenView {
    /// Row id.
    pub id: i64,
    /// Label.
    pub label: String,
    /// RFC 3339.
    pub created: String,
    /// Who made it.
    pub created_by: String,
    /// RFC 3339 or empty.
    pub last_used: String,
    /// Whether it was revoked.
    pub revoked: bool,
    /// RFC 3339 when it stops working, or empty: never.
    pub expires: String,
    /// Whether its expiry has passed.
    pub expired: bool,
}

impl TokenView {
    /// Whether it still works (neither revoked nor expired).
    pub fn live(&self) -> bool {
        !self.revoked && !self.expired
    }
}

/// Lists a user's tokens for display.
#[tracing::instrument(skip_all)]
pub(crate) async fn token_views(state: &AppState, user_id: i64) -> AppResult<Vec<TokenView>> {
    let now = crate::db::now_unix();
    Ok(tokens::list_for_user(&state.pool, user_id)
        .await?
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            label: t.label,
            created: rfc3339(t.created_at),
            created_by: t.created_by,
            last_used: t.last_used_at.map(rfc3339).unwrap_or_default(),
            revoked: t.revoked_at.is_some(),
            expires: t.expires_at.map(rfc3339).unwrap_or_default(),
            expired: t.expires_at.is_some_and(|at| at <= now),
        })
        .collect())
}

/// The token form's optional expiry: whole days, blank for never.
pub(crate) fn expiry_days(raw: &str) -> AppResult<Option<u32>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(days) if (1..=3650).contains(&days) => Ok(Some(days)),
        _ => Err(AppError::invalid(
            code::INVALID_EXPIRY,
            "A token's expiry is a whole number of days from 1 to 3650, or blank for never.",
        )),
    }
}

#[derive(Template)]
#[template(path = "account/show.html")]
struct AccountPage {
    ctx: PageCtx,
    name: String,
    role: String,
    role_text: &'static str,
    sessions: Vec<SessionView>,
    tokens: Vec<TokenView>,
    new_token: Option<String>,
    error: Option<String>,
    revoke_base: &'static str,
}

async fn page(
    state: &AppState,
    ctx: PageCtx,
    who: &Identity,
    new_token: Option<String>,
    error: Option<String>,
) -> AppResult<AccountPage> {
    let current = match who.via {
        Via::Session { session_id, .. } => Some(session_id),
        Via::Token { .. } => None,
    };
    let sessions = sessions::list_for_user(&state.pool, who.user_id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            id: s.id,
            this_one: Some(s.id) == current,
            started: rfc3339(s.created_at),
            last_seen: rfc3339(s.last_seen_at),
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(AccountPage {
        ctx,
        name: who.name.clone(),
        role: who.role.to_string(),
        role_text: who.role.describe(),
        sessions,
        tokens: token_views(state, who.user_id).await?,
        new_token,
        error,
        revoke_base: "/account",
    })
}

/// `GET /account`.
#[tracing::instrument(skip_all)]
pub(crate) async fn show(
    ctx: PageCtx,
    who: Identity,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    render(StatusCode::OK, &page(&state, ctx, &who, None, None).await?)
}

/// Submitted fields.
#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

/// `POST /account/password`.
#[tracing::instrument(skip_all)]
pub(crate) async fn change_password(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    form: web::Form<PasswordForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let result = if form.new != form.confirm {
        Err(AppError::invalid(
            code::PASSWORDS_DIFFER,
            "The new password and its confirmation differ. Type them again.",
        ))
    } else {
        state
            .auth
            .change_own_password(
                &who,
                &Password::new(form.current),
                &Password::new(form.new),
                &client.source,
            )
            .await
    };
    match result {
        Ok(()) => Ok(see_other("/account?notice=password-changed")),
        Err(e @ AppError::Invalid { .. }) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render(
                status,
                &page(&state, ctx, &who, None, Some(e.to_string())).await?,
            )
        }
        Err(e) => Err(e),
    }
}

/// `POST /account/sessions/{id}/end`.
#[tracing::instrument(skip_all)]
pub(crate) async fn end_session(
    who: Identity,
    client: ClientInfo,
    id: web::Path<i64>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    state
        .auth
        .end_own_session(&who, id.into_inner(), &client.source)
        .await?;
    Ok(see_other("/account?notice=session-ended"))
}

/// Submitted fields.
#[derive(Deserialize)]
pub(crate) struct TokenForm {
    label: String,
    /// Days until it stops working; blank: never.
    #[serde(default)]
    expires_days: String,
}

/// `POST /account/tokens`: shows the new token once, on the page itself (not after a redirect).
#[tracing::instrument(skip_all)]
pub(crate) async fn create_token(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    form: web::Form<TokenForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let created = match expiry_days(&form.expires_days) {
        Ok(days) => {
            let (actor, name) = (who.actor(), &who.name);
            let auth = &state.auth;
            auth.create_token_expiring(&actor, &client.source, name, &form.label, days)
                .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(secret) => {
            let mut res = render(
                StatusCode::CREATED,
                &page(&state, ctx, &who, Some(secret), None).await?,
            )?;
            // The page holds a secret: keep it out of every cache.
            res.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                "no-store".parse().expect("valid"),
            );
            Ok(res)
        }
        Err(e @ AppError::Invalid { .. }) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(&state, ctx, &who, None, Some(e.to_string())).await?,
        ),
        Err(e) => Err(e),
    }
}

/// `POST /account/tokens/{id}/revoke`.
#[tracing::instrument(skip_all)]
pub(crate) async fn revoke_token(
    who: Identity,
    client: ClientInfo,
    id: web::Path<i64>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    state
        .auth
        .revoke_token(&who.actor(), &client.source, who.user_id, id.into_inner())
        .await?;
    Ok(see_other("/account?notice=token-revoked"))
}
