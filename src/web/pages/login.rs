//! Log-in and log-out pages.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::password::Password;
use crate::auth::secret::random_token;
use crate::auth::Identity;
use crate::config::SecureCookie;
use crate::error::{AppError, AppResult};
use crate::web::client::ClientInfo;
use crate::web::layout::{render, see_other, PageCtx};
use crate::web::request::{LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageCtx,
    login_csrf: String,
    next: String,
    user_name: String,
    error: Option<String>,
}

/// Submitted fields.
#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// Only local paths: `next` must not send anyone to another site.
fn safe_next(next: Option<&str>) -> String {
    // A local path only: one leading '/', no second '/' or '\\' (another host), and no
    // whitespace or control characters, which browsers strip ("/\t/evil" becomes "//evil").
    match next {
        Some(n)
            if n.starts_with('/')
                && !n[1..].starts_with(['/', '\\'])
                && !n
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
                && !n.starts_with("/login") =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn cookie<'a>(name: &'a str, value: String, client: &ClientInfo, state: &AppState) -> Cookie<'a> {
    let secure = match state.settings.session.secure_cookie {
        SecureCookie::Auto => client.https,
        SecureCookie::Always => true,
        SecureCookie::Never => false,
    };
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

fn login_page(
    status: StatusCode,
    page: LoginPage,
    client: &ClientInfo,
    state: &AppState,
) -> AppResult<HttpResponse> {
    let token = page.login_csrf.clone();
    let mut res = render(status, &page)?;
    res.add_cookie(&cookie(LOGIN_CSRF_COOKIE, token, client, state))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(res)
}

/// `GET /login`.
#[tracing::instrument(skip_all)]
pub(crate) async fn form(
    req: HttpRequest,
    ctx: PageCtx,
    q: web::Query<NextQuery>,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let next = safe_next(q.next.as_deref());
    if ctx.user.is_some() {
        return Ok(see_other(&next));
    }
    // Reuse the pending token if there is one, so two open tabs both work.
    let token = req
        .cookie(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_else(random_token);
    let page = LoginPage {
        ctx,
        login_csrf: token,
        next,
        user_name: String::new(),
        error: None,
    };
    login_page(StatusCode::OK, page, &client, &state)
}

/// Submitted fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    user_name: String,
    password: String,
    next: Option<String>,
}

/// `POST /login`.
#[tracing::instrument(skip_all)]
pub(crate) async fn submit(
    req: HttpRequest,
    ctx: PageCtx,
    form: web::Form<LoginForm>,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let password = Password::new(form.password);
    let old = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
    let next = safe_next(form.next.as_deref());
    match state
        .auth
        .login(
            &form.user_name,
            &password,
            client.ip,
            &client.source,
            old.as_deref(),
        )
        .await
    {
        Ok(session) => {
            let to = if session.must_change_password {
                "/account?notice=must-change".to_owned()
            } else {
                next
            };
            let mut res = see_other(&to);
            res.add_cookie(&cookie(SESSION_COOKIE, session.secret, &client, &state))
                .map_err(|e| AppError::Internal(e.into()))?;
            let mut gone = cookie(LOGIN_CSRF_COOKIE, String::new(), &client, &state);
            gone.make_removal();
            res.add_cookie(&gone)
                .map_err(|e| AppError::Internal(e.into()))?;
            Ok(res)
        }
        Err(e @ (AppError::Invalid { .. } | AppError::Throttled { .. })) => {
            let status = if matches!(e, AppError::Throttled { .. }) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            let token = req
                .cookie(LOGIN_CSRF_COOKIE)
                .map(|c| c.value().to_owned())
                .unwrap_or_else(random_token);
            let page = LoginPage {
                ctx,
                login_csrf: token,
                next,
                user_name: form.user_name.trim().chars().take(64).collect(),
                error: Some(e.to_string()),
            };
            let mut res = login_page(status, page, &client, &state)?;
            if let AppError::Throttled { retry_after, .. } = e {
                res.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, retry_after.into());
            }
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

/// `POST /logout`.
#[tracing::instrument(skip_all)]
pub(crate) async fn logout(
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    state.auth.logout(&who, &client.source).await?;
    let mut res = see_other("/login?notice=logged-out");
    let mut gone = cookie(SESSION_COOKIE, String::new(), &client, &state);
    gone.make_removal();
    res.add_cookie(&gone)
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/account")), "/account");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "/login?next=/",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
