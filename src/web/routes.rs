//! Every route and who may use it. The access guard refuses any route not declared here,
//! and the route × role test walks this table.

use actix_web::http::Method;
use actix_web::web;

use super::{api, assets, pages};
use crate::auth::Role;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// Logged-in users with at least this role.
    Role(Role),
}

/// One declared route.
#[derive(Debug)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// actix path pattern.
    pub path: &'static str,
    /// Who may use it.
    pub access: Access,
    /// Whether a multipart body may carry the CSRF token as its first field (uploads).
    pub multipart: bool,
}

impl RouteSpec {
    /// Routes a user with a generated password may still use (to change it, or leave).
    pub fn allowed_before_password_change(&self) -> bool {
        matches!(self.path, "/account" | "/account/password" | "/logout")
    }
}

const fn r(method: Method, path: &'static str, access: Access) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
        multipart: false,
    }
}

/// An upload route: a multipart body may carry its CSRF token as the first field.
const fn upload(path: &'static str, access: Access) -> RouteSpec {
    RouteSpec {
        method: Method::POST,
        path,
        access,
        multipart: true,
    }
}

use Access::{Public, Role as R};
use Role::{Admin, Deployer, Operator, Viewer};

/// The declarations.
pub static ROUTES: &[RouteSpec] = &[
    r(Method::GET, "/healthz", Public),
    r(Method::GET, "/static/{file}", Public),
    r(Method::GET, "/login", Public),
    r(Method::POST, "/login", Public),
    r(Method::POST, "/logout", R(Viewer)),
    r(Method::GET, "/", R(Viewer)),
    r(Method::GET, "/audit", R(Viewer)),
    r(Method::GET, "/audit/export.csv", R(Viewer)),
    r(Method::GET, "/audit/export.json", R(Viewer)),
    r(Method::POST, "/audit/verify", R(Admin)),
    r(Method::GET, "/sites/{site}/timeline", R(Viewer)),
    r(Method::GET, "/api/v1/sites/{site}/timeline", R(Viewer)),
    r(Method::GET, "/account", R(Viewer)),
    r(Method::POST, "/account/password", R(Viewer)),
    r(Method::POST, "/account/sessions/{id}/end", R(Viewer)),
    r(Method::POST, "/account/tokens", R(Viewer)),
    r(Method::POST, "/account/tokens/{id}/revoke", R(Viewer)),
    r(Method::GET, "/admin/users", R(Admin)),
    r(Method::POST, "/admin/users", R(Admin)),
    r(Method::GET, "/admin/users/{name}", R(Admin)),
    r(Method::POST, "/admin/users/{name}/role", R(Admin)),
    r(Method::POST, "/admin/users/{name}/disable", R(Admin)),
    r(Method::POST, "/admin/users/{name}/enable", R(Admin)),
    r(Method::POST, "/admin/users/{name}/password", R(Admin)),
    r(Method::POST, "/admin/users/{name}/tokens", R(Admin)),
    r(
        Method::POST,
        "/admin/users/{name}/tokens/{id}/revoke",
        R(Admin),
    ),
    r(Method::GET, "/sites/new", R(Admin)),
    r(Method::POST, "/sites", R(Admin)),
    r(Method::GET, "/sites/{site}", R(Viewer)),
    r(Method::GET, "/sites/{site}/settings", R(Admin)),
    r(Method::POST, "/sites/{site}/settings", R(Admin)),
    upload("/sites/{site}/releases", R(Deployer)),
    r(Method::GET, "/sites/{site}/releases/{id}", R(Viewer)),
    r(Method::POST, "/sites/{site}/releases/{id}/pin", R(Deployer)),
    r(
        Method::POST,
        "/sites/{site}/releases/{id}/unpin",
        R(Deployer),
    ),
    r(Method::POST, "/sites/{site}/releases/{id}/delete", R(Admin)),
    r(Method::GET, "/sites/{site}/compare", R(Viewer)),
    r(
        Method::GET,
        "/sites/{site}/releases/{id}/activate",
        R(Operator),
    ),
    r(
        Method::POST,
        "/sites/{site}/releases/{id}/activate",
        R(Operator),
    ),
    r(Method::GET, "/sites/{site}/rollback", R(Operator)),
    r(Method::POST, "/sites/{site}/rollback", R(Operator)),
    r(Method::GET, "/sites/{site}/config", R(Admin)),
    r(Method::POST, "/sites/{site}/config/check", R(Admin)),
    r(Method::GET, "/api/v1/me", R(Viewer)),
    r(Method::GET, "/api/v1/audit", R(Viewer)),
    r(Method::GET, "/api/v1/sites", R(Viewer)),
    r(Method::POST, "/api/v1/sites", R(Admin)),
    r(Method::GET, "/api/v1/sites/{site}", R(Viewer)),
    r(Method::GET, "/api/v1/sites/{site}/releases", R(Viewer)),
    upload("/api/v1/sites/{site}/releases", R(Deployer)),
    r(Method::GET, "/api/v1/sites/{site}/releases/{id}", R(Viewer)),
    r(
        Method::DELETE,
        "/api/v1/sites/{site}/releases/{id}",
        R(Admin),
    ),
    r(
        Method::POST,
        "/api/v1/sites/{site}/releases/{id}/pin",
        R(Deployer),
    ),
    r(
        Method::POST,
        "/api/v1/sites/{site}/releases/{id}/unpin",
        R(Deployer),
    ),
    r(Method::GET, "/api/v1/sites/{site}/compare", R(Viewer)),
    r(
        Method::POST,
        "/api/v1/sites/{site}/releases/{id}/activate",
        R(Operator),
    ),
    r(Method::POST, "/api/v1/sites/{site}/rollback", R(Operator)),
    r(Method::GET, "/api/v1/sites/{site}/vhost", R(Admin)),
    r(Method::POST, "/api/v1/sites/{site}/configtest", R(Admin)),
];

/// Registers the handlers. Each path here needs its declarations above.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.service(resource("/healthz").route(get().to(api::healthz)))
        .service(resource("/static/{file}").route(get().to(assets::serve)))
        .service(
            resource("/login")
                .route(get().to(pages::login::form))
                .route(post().to(pages::login::submit)),
        )
        .service(resource("/logout").route(post().to(pages::login::logout)))
        .service(resource("/").route(get().to(pages::sites::list)))
        .service(resource("/audit").route(get().to(pages::audit::list)))
        .service(resource("/audit/export.csv").route(get().to(pages::audit::export_csv)))
        .service(resource("/audit/export.json").route(get().to(pages::audit::export_json)))
        .service(resource("/audit/verify").route(post().to(pages::audit::verify)))
        .service(resource("/sites/{site}/timeline").route(get().to(pages::timeline::show)))
        .service(resource("/api/v1/sites/{site}/timeline").route(get().to(api::sites::timeline)))
        .service(resource("/account").route(get().to(pages::account::show)))
        .service(resource("/account/password").route(post().to(pages::account::change_password)))
        .service(
            resource("/account/sessions/{id}/end").route(post().to(pages::account::end_session)),
        )
        .service(resource("/account/tokens").route(post().to(pages::account::create_token)))
        .service(
            resource("/account/tokens/{id}/revoke").route(post().to(pages::account::revoke_token)),
        )
        .service(
            resource("/admin/users")
                .route(get().to(pages::users::list))
                .route(post().to(pages::users::create)),
        )
        .service(resource("/admin/users/{name}").route(get().to(pages::users::show)))
        .service(resource("/admin/users/{name}/role").route(post().to(pages::users::set_role)))
        .service(resource("/admin/users/{name}/disable").route(post().to(pages::users::disable)))
        .service(resource("/admin/users/{name}/enable").route(post().to(pages::users::enable)))
        .service(
            resource("/admin/users/{name}/password").route(post().to(pages::users::reset_password)),
        )
        .service(
            resource("/admin/users/{name}/tokens").route(post().to(pages::users::create_token)),
        )
        .service(
            resource("/admin/users/{name}/tokens/{id}/revoke")
                .route(post().to(pages::users::revoke_token)),
        )
        .service(resource("/sites/new").route(get().to(pages::sites::new_form)))
        .service(resource("/sites").route(post().to(pages::sites::create)))
        .service(resource("/sites/{site}").route(get().to(pages::sites::show)))
        .service(
            resource("/sites/{site}/settings")
                .route(get().to(pages::sites::settings_form))
                .route(post().to(pages::sites::update)),
        )
        .service(resource("/sites/{site}/releases").route(post().to(pages::releases::upload)))
        .service(resource("/sites/{site}/releases/{id}").route(get().to(pages::releases::show)))
        .service(resource("/sites/{site}/releases/{id}/pin").route(post().to(pages::releases::pin)))
        .service(
            resource("/sites/{site}/releases/{id}/unpin").route(post().to(pages::releases::unpin)),
        )
        .service(
            resource("/sites/{site}/releases/{id}/delete")
                .route(post().to(pages::releases::delete)),
        )
        .service(resource("/sites/{site}/compare").route(get().to(pages::releases::compare)))
        .service(
            resource("/api/v1/sites")
                .route(get().to(api::sites::list))
                .route(post().to(api::sites::create)),
        )
        .service(resource("/api/v1/sites/{site}").route(get().to(api::sites::show)))
        .service(
            resource("/api/v1/sites/{site}/releases")
                .route(get().to(api::releases::list))
                .route(post().to(api::releases::upload)),
        )
        .service(
            resource("/api/v1/sites/{site}/releases/{id}")
                .route(get().to(api::releases::show))
                .route(web::delete().to(api::releases::delete)),
        )
        .service(
            resource("/api/v1/sites/{site}/releases/{id}/pin").route(post().to(api::releases::pin)),
        )
        .service(
            resource("/api/v1/sites/{site}/releases/{id}/unpin")
                .route(post().to(api::releases::unpin)),
        )
        .service(resource("/api/v1/sites/{site}/compare").route(get().to(api::releases::compare)))
        .service(
            resource("/sites/{site}/releases/{id}/activate")
                .route(get().to(pages::golive::confirm_activate))
                .route(post().to(pages::golive::activate)),
        )
        .service(
            resource("/sites/{site}/rollback")
                .route(get().to(pages::golive::confirm_rollback))
                .route(post().to(pages::golive::rollback)),
        )
        .service(resource("/sites/{site}/config").route(get().to(pages::golive::show_config)))
        .service(
            resource("/sites/{site}/config/check").route(post().to(pages::golive::check_config)),
        )
        .service(
            resource("/api/v1/sites/{site}/releases/{id}/activate")
                .route(post().to(api::golive::activate)),
        )
        .service(resource("/api/v1/sites/{site}/rollback").route(post().to(api::golive::rollback)))
        .service(resource("/api/v1/sites/{site}/vhost").route(get().to(api::golive::vhost)))
        .service(
            resource("/api/v1/sites/{site}/configtest").route(post().to(api::golive::configtest)),
        )
        .service(resource("/api/v1/me").route(get().to(api::me)))
        .service(resource("/api/v1/audit").route(get().to(api::audit)));
}
