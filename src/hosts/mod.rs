//! Several web servers (issue 17): a site served by a list of hosts, reached over OpenSSH,
//! each staged with rsync and switched all or none with the others.
//!
//! No agent of our own runs on a host: every remote operation is an argument list, quoted for
//! the remote shell by [`ssh::remote_command`], run through a reused OpenSSH connection whose
//! host key was pinned when an admin confirmed it.

pub mod armed;
mod delta;
pub mod host;
pub mod input;
mod keys;
pub mod php;
mod quote;
pub mod remote;
mod rsync;
pub mod ssh;
pub mod stage;
pub mod store;
pub mod verify;

pub use host::{known_host_name, Host};
pub use input::HostInput;
pub use keys::fingerprint;
pub use ssh::Ssh;

/// Closes Cutover's connection to every host (the console stops).
pub async fn close_all(ssh: &Ssh, pool: &sqlx::SqlitePool) {
    let Ok(all) = store::all(pool).await else {
        return;
    };
    futures_util::future::join_all(all.iter().map(|h| ssh.close(h))).await;
}
