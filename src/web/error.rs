//! How an [`AppError`] becomes an HTTP answer: JSON for the API, a page (by the access guard)
//! for browsers.

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::error::AppError;

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Invalid {
                code: "method_not_allowed",
                ..
            } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Invalid {
                code: "too_large", ..
            } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Invalid {
                code: "body_timeout",
                ..
            } => StatusCode::REQUEST_TIMEOUT,
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
