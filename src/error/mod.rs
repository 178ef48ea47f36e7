//! The one error type of the console. Domain code returns it; `web::error` maps it to HTTP
//! by its variant (each variant is one kind of answer), its `code` (see [`code`]) says why.

pub mod code;

pub use code::Code;

/// Anything that can go wrong, with a stable machine-readable code and a sentence for people.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid credentials.
    #[error("You need to log in first.")]
    Unauthorized,
    /// Credentials, but not the right (or a refused request: CSRF, cross-site).
    #[error("{message}")]
    Forbidden { code: Code, message: String },
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The input is not acceptable; the message says what is.
    #[error("{message}")]
    Invalid { code: Code, message: String },
    /// The request is larger than a limit allows (413).
    #[error("{message}")]
    TooLarge { code: Code, message: String },
    /// The method is not one this path answers (405).
    #[error("{message}")]
    MethodNotAllowed { message: String },
    /// The request did not arrive in time (408).
    #[error("{message}")]
    TimedOut { code: Code, message: String },
    /// The server is out of room (507): nothing the person typed is wrong; an admin must act.
    #[error("{message}")]
    Storage { code: Code, message: String },
    /// Someone or something else holds what is needed; try again later.
    #[error("{message}")]
    Conflict { code: Code, message: String },
    /// Too many attempts; wait this many seconds.
    #[error("{message}")]
    Throttled { retry_after: u64, message: String },
    /// A bug or an outage: logged with its cause, never shown.
    #[error("Something went wrong on the server. The problem was logged; try again, and if it persists tell your administrator.")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// Shorthand for [`AppError::Invalid`].
    pub fn invalid(code: Code, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    /// Shorthand for [`AppError::Forbidden`] for lacking a role.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            code: code::FORBIDDEN,
            message: message.into(),
        }
    }

    /// The stable snake_case code of the API's `error.code`.
    pub fn code(&self) -> Code {
        match self {
            AppError::Unauthorized => code::UNAUTHORIZED,
            AppError::Forbidden { code, .. } => *code,
            AppError::NotFound(_) => code::NOT_FOUND,
            AppError::Invalid { code, .. } => *code,
            AppError::TooLarge { code, .. } => *code,
            AppError::MethodNotAllowed { .. } => code::METHOD_NOT_ALLOWED,
            AppError::Storage { code, .. } => *code,
            AppError::TimedOut { code, .. } => *code,
            AppError::Conflict { code, .. } => *code,
            AppError::Throttled { .. } => code::TOO_MANY_ATTEMPTS,
            AppError::Internal(_) => code::INTERNAL,
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
