//! Can Apache's worker user get to a folder? (Unix permission bits, ACLs not considered.)

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::unistd::{getegid, geteuid, getgrouplist, getgroups, Gid, Uid, User};

/// The user Apache's workers run as when it is started by root.
pub const WORKER_USER: &str = "www-data";

/// Who Apache's workers run as: a name for messages and the ids the kernel checks.
#[derive(Debug, Clone)]
pub(crate) struct Worker {
    pub name: String,
    pub uid: Uid,
    pub gids: Vec<Gid>,
}

impl Worker {
    /// The workers' identity: [`WORKER_USER`] when we are root (config has `User`), else ourselves.
    pub fn current() -> Result<Worker, String> {
        let euid = geteuid();
        if euid.is_root() {
            let user = User::from_name(WORKER_USER)
                .map_err(|e| format!("Could not look up the user {WORKER_USER}: {e}."))?
                .ok_or_else(|| {
                    format!(
                        "The user {WORKER_USER} does not exist; Apache's workers need it. \
                         Install Apache from the system's packages, which creates it."
                    )
                })?;
            let cname = std::ffi::CString::new(WORKER_USER).expect("constant has no NUL");
            let gids = getgrouplist(&cname, user.gid).unwrap_or_else(|_| vec![user.gid]);
            Ok(Worker {
                name: WORKER_USER.to_string(),
                uid: user.uid,
                gids,
            })
        } else {
            let mut gids = getgroups().unwrap_or_default();
            gids.push(getegid());
            let name = User::from_uid(euid)
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| format!("uid {euid}"));
            Ok(Worker {
                name,
                uid: euid,
                gids,
            })
        }
    }

    /// Checks that the worker can enter every folder from / down to `path`
    /// (and read `path` if it is a file); names the first folder that blocks it.
    pub fn can_reach(&self, path: &Path) -> Result<(), String> {
        let real = match path.canonicalize() {
            Ok(real) => real,
            // Only a non-root console is refused here, and then the worker is that same
            // user: the folder above the first one we cannot look into is the blocker.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                let blocker = path
                    .ancestors()
                    .find(|a| std::fs::metadata(a).is_ok() && a.join(".").metadata().is_err())
                    .unwrap_or(path);
                return Err(format!(
                    "The web server runs as {}, which cannot enter {} (on the way to {}). \
                     Allow it with: chmod o+x {}",
                    self.name,
                    blocker.display(),
                    path.display(),
                    blocker.display()
                ));
            }
            Err(e) => {
                return Err(format!(
                    "{} cannot be checked: {e}. Check that it exists.",
                    path.display()
                ))
            }
        };
        let mut dir = PathBuf::from("/");
        let mut parts: Vec<PathBuf> = vec![dir.clone()];
        for c in real.components().skip(1) {
            dir.push(c);
            parts.push(dir.clone());
        }
        for p in parts {
            let meta = std::fs::metadata(&p)
                .map_err(|e| format!("{} cannot be checked: {e}.", p.display()))?;
            let (needed, bit_name, fix) = if meta.is_dir() {
                (0o1, "enter", "o+x")
            } else {
                (0o4, "read", "o+r")
            };
            if !self.allowed(&meta, needed) {
                let shown_from = if real != path {
                    format!(" (on the way to {})", path.display())
                } else {
                    String::new()
                };
                return Err(format!(
                    "The web server runs as {}, which cannot {bit_name} {}{shown_from}: it has mode \
                     {:04o} and belongs to uid {}. Allow it with: chmod {fix} {}",
                    self.name,
                    p.display(),
                    meta.mode() & 0o7777,
                    meta.uid(),
                    p.display()
                ));
            }
        }
        Ok(())
    }

    /// The kernel's owner/group/other rule for one permission bit (`0o1` = x, `0o4` = r).
    fn allowed(&self, meta: &std::fs::Metadata, bit: u32) -> bool {
        if self.uid.is_root() {
            return true;
        }
        let mode = meta.mode();
        if meta.uid() == self.uid.as_raw() {
            mode & (bit << 6) != 0
        } else if self.gids.iter().any(|g| g.as_raw() == meta.gid()) {
            mode & (bit << 3) != 0
        } else {
            mode & bit != 0
        }
    }
}
