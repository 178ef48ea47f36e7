//! HTTP: the route table, the access guard, pages and the JSON API. Handlers stay thin and
//! call into `auth`, `audit` and the other domain modules.

pub mod access;
pub mod api;
pub mod assets;
pub mod client;
pub mod error;
pub mod headers;
pub mod layout;
pub mod limits;
pub mod pages;
pub mod permissions;
pub mod request;
pub mod routes;
pub mod upload;

use std::sync::Arc;

use crate::db::Pool;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use crate::auth::{Auth, Identity};
use crate::config::Settings;
use crate::error::AppError;
use client::ClientInfo;

/// What every handler can reach.
pub struct AppState {
    /// The database.
    pub pool: Pool,
    /// Accounts, sessions, tokens.
    pub auth: Auth,
    /// Settings as loaded.
    pub settings: Arc<Settings>,
    /// Going live and rolling back (and the Apache it drives).
    pub golive: crate::golive::GoLive,
    /// Caps the uploads extracted while they arrive.
    pub streams: crate::releases::incoming::StreamCap,
    /// Switches being watched from the browser.
    pub runs: crate::golive::live::Runs,
}

impl AppState {
    /// Pins, unpins or deletes release `id` of site `name` as `who` (pages and API alike);
    /// returns the site.
    pub(crate) async fn change_release(
        &self,
        who: &Identity,
        client: &ClientInfo,
        (name, id): (&str, &str),
        change: crate::releases::manage::Change,
    ) -> crate::error::AppResult<crate::sites::Site> {
        let root = self.settings.sites_root();
        let source = (who.actor(), &client.source);
        crate::releases::manage::change(&self.pool, &root, name, id, change, (&source.0, source.1))
            .await
    }
}

impl FromRequest for Identity {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    /// The identity the access guard recognised; routes that declare a role always have one.
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Identity>()
                .cloned()
                .ok_or(AppError::Unauthorized),
        )
    }
}

impl FromRequest for ClientInfo {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<ClientInfo>()
                .cloned()
                .ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("client info missing: guard not installed"))
                }),
        )
    }
}
