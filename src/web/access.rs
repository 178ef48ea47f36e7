//! The access guard: every request passes here before any handler. It finds the route's
//! declared access in [`super::permissions::ROUTES`] (no declaration: refused), recognises the
//! caller, checks the role, and for state-changing browser requests checks CSRF.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use serde_json::json;

use super::client::ClientInfo;
use super::error;
use super::permissions::{Access, ROUTES};
use super::request::{wants_json, MustChangePassword, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use super::upload::PendingCsrf;
use super::AppState;
use crate::audit::{self, Event, Outcome};
use crate::auth::{csrf, Identity};
use crate::error::code;
use crate::error::AppError;

/// Longest request path kept in a refusal's audit event (bytes).
const MAX_LOGGED_PATH: usize = 512;
/// Largest form body read to find the CSRF token.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Whether the request is for the JSON API, judged on the path the router uses.
fn is_api(req: &ServiceRequest) -> bool {
    req.match_info().as_str().starts_with("/api/")
}

/// The guard, wrapped around the whole app.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .clone();
    let client = ClientInfo::of(&req, &state.settings.trusted_proxies);
    req.extensions_mut().insert(client.clone());
    let api = is_api(&req);
    let json = api || wants_json(req.headers());

    match decide(&mut req, &state, &client, api).await {
        Ok(()) => {}
        Err(Refusal::Error(e)) => return Ok(error::answer(req, e, json)),
        // A script that asked for JSON gets a 401 it can explain, not the log-in page.
        Err(Refusal::Redirect(to)) if json && to.starts_with("/login") => {
            return Ok(error::answer(req, AppError::Unauthorized, json));
        }
        Err(Refusal::Redirect(to)) => {
            let res = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish();
            return Ok(req.into_response(res));
        }
    }
    let res = next.call(req).await?.map_into_boxed_body();
    // Handlers' errors become pages (keeping the layout) for browsers, JSON for the API
    // and for scripts that asked for it.
    Ok(if json { res } else { error::as_page(res) })
}

enum Refusal {
    Error(AppError),
    Redirect(String),
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        Refusal::Error(e)
    }
}

async fn decide(
    req: &mut ServiceRequest,
    state: &AppState,
    client: &ClientInfo,
    api: bool,
) -> Result<(), Refusal> {
    // Match on the path the router will use (percent-decoded), never the raw one: `/%61dmin`
    // must be judged as `/admin`. Nothing matches: 404 here, so no handler is ever reached
    // without its declaration being checked.
    let routed = req.match_info().as_str().to_owned();
    let Some(pattern) = req.resource_map().match_pattern(&routed) else {
        return Err(AppError::NotFound(
            "There is nothing at this address. Check the link, or start again from the sites page."
                .into(),
        )
        .into());
    };
    let declared: Vec<_> = ROUTES.iter().filter(|r| r.path == pattern).collect();
    let Some(route) = declared.iter().find(|r| r.method == req.method()) else {
        if declared.is_empty() {
            // Registered but never declared: deny by default, loudly.
            tracing::error!(%pattern, "route has no access declaration; refusing");
            return Err(AppError::forbidden(
                "This address has no access rule, so nobody may use it.",
            )
            .into());
        }
        return Err(AppError::MethodNotAllowed {
            message: "This address does not accept that kind of request.".into(),
        }
        .into());
    };

    let identity = match identify(req, state, api).await {
        Err(AppError::Unauthorized) => {
            // A presented API token that does not work (revoked, made up): worth a record.
            deny(
                state,
                client,
                None,
                req,
                "access_denied",
                json!({"reason": "invalid or revoked API token"}),
            )
            .await?;
            return Err(AppError::Unauthorized.into());
        }
        other => other?,
    };
    if let Some((who, must_change)) = &identity {
        req.extensions_mut().insert(who.clone());
        if *must_change {
            req.extensions_mut().insert(MustChangePassword);
        }
    }
    if let Access::Role(needed) = route.access {
        let Some((who, must_change)) = &identity else {
            if api {
                return Err(AppError::Unauthorized.into());
            }
            let here = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            // A form sent after the session ended did nothing: say so, and for a switch come
            // back to its confirmation page (a GET of the same address) after logging in.
            let path = req.path();
            let next = if req.method() == Method::GET {
                format!("?next={}", urlencode(here))
            } else if path.ends_with("/rollback") || path.ends_with("/activate") {
                format!("?notice=expired&next={}", urlencode(path))
            } else {
                "?notice=expired".to_owned()
            };
            return Err(Refusal::Redirect(format!("/login{next}")));
        };
        if who.role < needed {
            deny(
                state,
                client,
                Some(who),
                req,
                "access_denied",
                json!({"needed_role": needed.as_str()}),
            )
            .await?;
            return Err(AppError::forbidden(format!(
                "Your role ({}) does not allow this: it needs the {} role. Ask an admin if you need it.",
                who.role, needed
            ))
            .into());
        }
        if *must_change && !route.allowed_before_password_change() && !api {
            return Err(Refusal::Redirect("/account?notice=must-change".into()));
        }
    }
    let bearer = identity
        .as_ref()
        .is_some_and(|(who, _)| who.csrf_token().is_none());
    if !req.method().is_safe() && !bearer {
        check_csrf(
            req,
            state,
            client,
            identity.as_ref().map(|(w, _)| w),
            route.multipart,
        )
        .await?;
    }
    Ok(())
}

async fn identify(
    req: &ServiceRequest,
    state: &AppState,
    api: bool,
) -> Result<Option<(Identity, bool)>, AppError> {
    if api {
        let Some(auth) = req.headers().get(header::AUTHORIZATION) else {
            return Ok(None);
        };
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        return match token {
            Some(t) => match state.auth.token_identity(t).await? {
                Some(who) => Ok(Some((who, false))),
                None => Err(AppError::Unauthorized),
            },
            None => Err(AppError::Unauthorized),
        };
    }
    match req.cookie(SESSION_COOKIE) {
        Some(c) => state.auth.session_identity(c.value()).await,
        None => Ok(None),
    }
}

async fn check_csrf(
    req: &mut ServiceRequest,
    state: &AppState,
    client: &ClientInfo,
    who: Option<&Identity>,
    multipart_ok: bool,
) -> Result<(), AppError> {
    let header_str = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if csrf::is_cross_site(
        header_str("sec-fetch-site"),
        header_str("origin"),
        header_str("host"),
    ) {
        deny(
            state,
            client,
            who,
            req,
            "csrf_refused",
            json!({"reason": "cross-site request"}),
        )
        .await?;
        return Err(AppError::Forbidden {
            code: code::CROSS_SITE_REQUEST,
            message: "This request came from another website, so it was refused. Use the console's own pages.".into(),
        });
    }
    let expected = match who {
        Some(w) => w.csrf_token().map(str::to_owned),
        None => req.cookie(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned()),
    };
    let header_token = header_str(csrf::HEADER).map(str::to_owned);
    if header_token.is_none() && req.content_type() == "multipart/form-data" {
        // Uploads carry the token as their first field: the receiver checks it before
        // reading anything else. Only routes declared for uploads may do this.
        if let (true, Some(e)) = (multipart_ok, &expected) {
            req.extensions_mut().insert(PendingCsrf(e.clone()));
            return Ok(());
        }
    }
    let provided = match header_token {
        Some(t) => Some(t),
        None => form_field(req, csrf::FIELD).await?,
    };
    let ok = matches!((&expected, &provided), (Some(e), Some(p)) if crate::auth::secret::same_secret(e, p));
    if !ok {
        let reason = if provided.is_none() {
            "no token"
        } else {
            "wrong token"
        };
        deny(
            state,
            client,
            who,
            req,
            "csrf_refused",
            json!({"reason": reason}),
        )
        .await?;
        return Err(AppError::Forbidden {
            code: code::CSRF_FAILED,
            message: "This form has expired or did not come from this console. Reload the page and try again.".into(),
        });
    }
    Ok(())
}

/// Reads a field of a URL-encoded form body, then puts the body back for the handler.
async fn form_field(req: &mut ServiceRequest, field: &str) -> Result<Option<String>, AppError> {
    if req.content_type() != "application/x-www-form-urlencoded" {
        return Ok(None);
    }
    let mut body = web::BytesMut::new();
    let mut payload = req.take_payload();
    use futures_util::StreamExt;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if super::limits::is_body_timeout(&e) {
                return AppError::TimedOut {
                    code: code::BODY_TIMEOUT,
                    message:
                        "The form took too long to arrive. Check the connection and send it again."
                            .into(),
                };
            }
            AppError::invalid(
                code::BAD_REQUEST,
                format!("The form could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(AppError::TooLarge {
                code: code::TOO_LARGE,
                message: "The form is too large.".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let value = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == field).map(|(_, v)| v));
    let (_, mut replay) = actix_http::h1::Payload::create(true);
    replay.unread_data(body);
    req.set_payload(Payload::from(replay));
    Ok(value)
}

async fn deny(
    state: &AppState,
    client: &ClientInfo,
    who: Option<&Identity>,
    req: &ServiceRequest,
    action: &str,
    mut detail: serde_json::Value,
) -> Result<(), AppError> {
    detail["method"] = json!(req.method().as_str());
    detail["path"] = json!(audit::caps::cut(req.path(), MAX_LOGGED_PATH));
    let Some(who) = who else {
        // Anyone can send these at will: counted per source, not a row each.
        let event = Event::new("anonymous", action, Outcome::Denied)
            .source(&client.source)
            .detail(detail);
        state.auth.refusals.record(&state.pool, event).await?;
        return Ok(());
    };
    audit::record_alone(
        &state.pool,
        &Event::new(who.actor(), action, Outcome::Denied)
            .source(&client.source)
            .detail(detail),
    )
    .await?;
    Ok(())
}

/// Percent-encodes a path for a `next=` parameter.
fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e[1..].to_owned())
        .unwrap_or_default()
}
