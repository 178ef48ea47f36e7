//! How an [`AppError`] becomes an HTTP answer: JSON for the API, a page (by the access guard)
//! for browsers.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::layout::{error_page, PageCtx};
use crate::error::AppError;

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Storage { .. } => StatusCode::INSUFFICIENT_STORAGE,
            AppError::TimedOut { .. } => StatusCode::REQUEST_TIMEOUT,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(cause) = self {
            // The cause chain goes to the log only: it may name paths or SQL.
            tracing::error!(error = ?cause, "request failed");
        }
        let mut res = HttpResponse::build(self.status_code())
            .json(json!({"error": {"code": self.code(), "message": self.to_string()}}));
        if let AppError::Throttled { retry_after, .. } = self {
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        if let AppError::Unauthorized = self {
            res.headers_mut().insert(
                actix_web::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cutover\""),
            );
        }
        res
    }
}

/// The answer to a request refused before any handler ran: JSON, or a page for browsers.
pub(crate) fn answer(req: ServiceRequest, e: AppError, json: bool) -> ServiceResponse<BoxBody> {
    if json {
        return req.into_response(e.error_response());
    }
    let ctx = PageCtx::from_request(req.request());
    let page = error_page(&ctx, e.status_code(), e.code(), &e.to_string(), req.path());
    req.into_response(page)
}

/// A handler's error as a page that keeps the layout (for browsers); other answers as they are.
pub(crate) fn as_page(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let Some(e) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<AppError>())
    else {
        return res;
    };
    let (status, code, message) = (res.status(), e.code(), e.to_string());
    let (req, _) = res.into_parts();
    let ctx = PageCtx::from_request(&req);
    let page = error_page(&ctx, status, code, &message, req.path());
    ServiceResponse::new(req, page)
}

/// A form body that cannot be read (an unknown field, a wrong type): 422 naming it.
pub(crate) fn form_refused(
    e: actix_web::error::UrlencodedError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    let message = format!("The form could not be taken, nothing was changed: {e}.");
    AppError::invalid(crate::error::code::BAD_FORM, message).into()
}
