//! Browser pages (askama templates in `templates/`).

pub mod account;
pub mod audit;
pub mod golive;
pub mod hosts;
pub mod login;
pub mod maintenance;
pub mod releases;
pub mod runs;
pub mod site_form;
pub mod sites;
pub mod timeline;
pub mod users;
