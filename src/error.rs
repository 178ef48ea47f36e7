//! The one error type of the console. Domain code returns it; `web::error` maps it to HTTP.

/// Anything that can go wrong, with a stable machine-readable code and a sentence for people.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid credentials.
    #[error("You need to log in first.")]
    Unauthorized,
    /// Credentials, but not the right (or a refused request: CSRF, cross-site).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The input is not acceptable; the message says what is.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Someone or something else holds what is needed; try again later.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Too many attempts; wait this many seconds.
    #[error("{message}")]
    Throttled { retry_after: u64, message: String },
    /// A bug or an outage: logged with its cause, never shown.
    #[error("Something went wrong on the server. The problem was logged; try again, and if it persists tell your administrator.")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// Shorthand for [`AppError::Invalid`].
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    /// Shorthand for [`AppError::Forbidden`] for lacking a role.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    /// The stable snake_case code of the API's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden { code, .. } => code,
            AppError::NotFound(_) => "not_found",
            AppError::Invalid { code, .. } => code,
            AppError::Conflict { code, .. } => code,
            AppError::Throttled { .. } => "too_many_attempts",
            AppError::Internal(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(e.into())
    }
}

/// Result with [`AppError`].
pub type AppResult<T> = Result<T, AppError>;
