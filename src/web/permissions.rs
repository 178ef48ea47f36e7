//! The one place that says who may do what: every route and its access. The access guard
//! refuses any route not declared here, and the route × role test walks this table.

use actix_web::http::Method;

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
    r(
        Method::POST,
        "/admin/users/{name}/tokens/revoke-all",
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
    // A switch being watched: its commands' output is for those who may switch.
    r(Method::GET, "/sites/{site}/runs/{run}", R(Operator)),
    r(
        Method::GET,
        "/sites/{site}/runs/{run}/progress",
        R(Operator),
    ),
    // Maintenance is an emergency tool: the on-call role may use it.
    r(Method::POST, "/sites/{site}/maintenance", R(Operator)),
    r(Method::GET, "/sites/{site}/config", R(Admin)),
    r(Method::POST, "/sites/{site}/config/check", R(Admin)),
    r(Method::GET, "/api/v1/me", R(Viewer)),
    r(Method::GET, "/api/v1/audit", R(Viewer)),
    r(Method::GET, "/api/v1/sites", R(Viewer)),
    r(Method::POST, "/api/v1/sites", R(Admin)),
    r(Method::GET, "/api/v1/sites/{site}", R(Viewer)),
    r(Method::PATCH, "/api/v1/sites/{site}", R(Admin)),
    r(Method::GET, "/sites/{site}/hosts", R(Viewer)),
    r(Method::POST, "/sites/{site}/hosts", R(Admin)),
    r(Method::POST, "/sites/{site}/hosts/{host}/confirm", R(Admin)),
    r(Method::POST, "/sites/{site}/hosts/{host}/remove", R(Admin)),
    r(Method::GET, "/api/v1/sites/{site}/hosts", R(Viewer)),
    r(Method::POST, "/api/v1/sites/{site}/hosts", R(Admin)),
    r(
        Method::DELETE,
        "/api/v1/sites/{site}/hosts/{host}",
        R(Admin),
    ),
    r(
        Method::POST,
        "/api/v1/sites/{site}/hosts/{host}/confirm",
        R(Admin),
    ),
    r(Method::GET, "/api/v1/ssh-key", R(Admin)),
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
