//! Admin pages: create users, set roles, disable/enable, reset passwords, revoke tokens.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::account::{expiry_days, token_views, TokenView};
use crate::auth::{Identity, Role};
use crate::db::users;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::web::client::ClientInfo;
use crate::web::layout::{render, rfc3339, see_other, PageCtx};
use crate::web::AppState;

/// A user line.
pub(crate) struct UserView {
    name: String,
    role: String,
    disabled: bool,
    must_change_password: bool,
    created: String,
}

fn view(u: users::UserRow) -> UserView {
    UserView {
        name: u.name,
        role: u.role.to_string(),
        disabled: u.disabled,
        must_change_password: u.must_change_password,
        created: rfc3339(u.created_at),
    }
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    ctx: PageCtx,
    users: Vec<UserView>,
    roles: Vec<(&'static str, &'static str)>,
    error: Option<String>,
    created: Option<(String, String)>,
}

fn roles() -> Vec<(&'static str, &'static str)> {
    Role::ALL
        .iter()
        .map(|r| (r.as_str(), r.describe()))
        .collect()
}

async fn users_page(
    state: &AppState,
    ctx: PageCtx,
    error: Option<String>,
    created: Option<(String, String)>,
) -> AppResult<UsersPage> {
    let users = users::list(&state.pool)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(UsersPage {
        ctx,
        users,
        roles: roles(),
        error,
        created,
    })
}

/// `GET /admin/users`.
#[tracing::instrument(skip_all)]
pub(crate) async fn list(ctx: PageCtx, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    render(StatusCode::OK, &users_page(&state, ctx, None, None).await?)
}

/// Submitted fields.
#[derive(Deserialize)]
pub(crate) struct CreateForm {
    name: String,
    role: String,
}

/// `POST /admin/users`: the new user's password is generated, shown once, and must be changed.
#[tracing::instrument(skip_all)]
pub(crate) async fn create(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    form: web::Form<CreateForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let result = match form.role.parse::<Role>() {
        Ok(role) => {
            state
                .auth
                .create_user(&who.actor(), &client.source, &form.name, role, None)
                .await
        }
        Err(m) => Err(AppError::invalid(code::INVALID_ROLE, m)),
    };
    match result {
        Ok(password) => {
            let name = form.name.trim().to_lowercase();
            let created = Some((name, password.unwrap_or_default()));
            let mut res = render(
                StatusCode::CREATED,
                &users_page(&state, ctx, None, created).await?,
            )?;
            res.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                "no-store".parse().expect("valid"),
            );
            Ok(res)
        }
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &users_page(&state, ctx, Some(e.to_string()), None).await?,
        ),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    ctx: PageCtx,
    user: UserView,
    roles: Vec<(&'static str, &'static str)>,
    tokens: Vec<TokenView>,
    revoke_base: String,
    new_password: Option<String>,
    new_token: Option<String>,
}

impl UserPage {
    /// Whether the page is about the signed-in admin (who cannot disable themselves).
    fn is_me(&self) -> bool {
        self.ctx
            .user
            .as_ref()
            .is_some_and(|u| u.name == self.user.name)
    }

    /// How many of the user's tokens still work.
    fn live_tokens(&self) -> usize {
        self.tokens.iter().filter(|t| t.live()).count()
    }
}

async fn user_page(
    state: &AppState,
    ctx: PageCtx,
    name: &str,
    new_password: Option<String>,
    new_token: Option<String>,
) -> AppResult<HttpResponse> {
    let user = users::find_by_name(&state.pool, name)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no user named {name}.")))?;
    let tokens = token_views(state, user.id).await?;
    let revoke_base = format!("/admin/users/{}", user.name);
    let status = if new_password.is_some() || new_token.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let secret_shown = status == StatusCode::CREATED;
    let mut res = render(
        status,
        &UserPage {
            ctx,
            user: view(user),
            roles: roles(),
            tokens,
            revoke_base,
            new_password,
            new_token,
        },
    )?;
    if secret_shown {
        res.headers_mut().insert(
            actix_web::http::header::CACHE_CONTROL,
            "no-store".parse().expect("valid"),
        );
    }
    Ok(res)
}

/// `GET /admin/users/{name}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn show(
    ctx: PageCtx,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    user_page(&state, ctx, &name, None, None).await
}

/// Submitted fields.
#[derive(Deserialize)]
pub(crate) struct RoleForm {
    role: String,
}

/// `POST /admin/users/{name}/role`.
#[tracing::instrument(skip_all)]
pub(crate) async fn set_role(
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    form: web::Form<RoleForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let role = form
        .role
        .parse::<Role>()
        .map_err(|m| AppError::invalid(code::INVALID_ROLE, m))?;
    state
        .auth
        .set_role(&who.actor(), &client.source, &name, role)
        .await?;
    Ok(see_other(&format!(
        "/admin/users/{}?notice=role-changed",
        name.trim().to_lowercase()
    )))
}

async fn set_disabled(
    who: Identity,
    client: ClientInfo,
    name: &str,
    state: &AppState,
    disabled: bool,
) -> AppResult<HttpResponse> {
    state
        .auth
        .set_disabled(&who, &client.source, name, disabled)
        .await?;
    let notice = if disabled {
        "user-disabled"
    } else {
        "user-enabled"
    };
    Ok(see_other(&format!(
        "/admin/users/{}?notice={notice}",
        name.trim().to_lowercase()
    )))
}

/// `POST /admin/users/{name}/disable`: ends all their sessions at once.
#[tracing::instrument(skip_all)]
pub(crate) async fn disable(
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    set_disabled(who, client, &name, &state, true).await
}

/// `POST /admin/users/{name}/enable`.
#[tracing::instrument(skip_all)]
pub(crate) async fn enable(
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    set_disabled(who, client, &name, &state, false).await
}

/// `POST /admin/users/{name}/password`: a new generated password, shown once.
#[tracing::instrument(skip_all)]
pub(crate) async fn reset_password(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let password = state
        .auth
        .reset_password(&who.actor(), &client.source, &name)
        .await?;
    user_page(&state, ctx, &name, Some(password), None).await
}

/// Submitted fields.
#[derive(Deserialize)]
pub(crate) struct TokenForm {
    label: String,
    /// Days until it stops working; blank: never.
    #[serde(default)]
    expires_days: String,
}

/// `POST /admin/users/{name}/tokens`: a token for another user, shown once.
#[tracing::instrument(skip_all)]
pub(crate) async fn create_token(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    form: web::Form<TokenForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let days = expiry_days(&form.expires_days)?;
    let secret = state
        .auth
        .create_token_expiring(&who.actor(), &client.source, &name, &form.label, days)
        .await?;
    user_page(&state, ctx, &name, None, Some(secret)).await
}

/// `POST /admin/users/{name}/tokens/{id}/revoke`.
#[tracing::instrument(skip_all)]
pub(crate) async fn revoke_token(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, i64)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let owner = users::find_by_name(&state.pool, &name)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no user named {name}.")))?;
    state
        .auth
        .revoke_token(&who.actor(), &client.source, owner.id, id)
        .await?;
    Ok(see_other(&format!(
        "/admin/users/{}?notice=token-revoked",
        owner.name
    )))
}

/// `POST /admin/users/{name}/tokens/revoke-all`: every token of the user at once, offered
/// on the password-reset page (a reset alone leaves tokens working).
#[tracing::instrument(skip_all)]
pub(crate) async fn revoke_all_tokens(
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    state
        .auth
        .revoke_all_tokens(&who.actor(), &client.source, &name)
        .await?;
    Ok(see_other(&format!(
        "/admin/users/{}?notice=tokens-revoked",
        name.trim().to_lowercase()
    )))
}
