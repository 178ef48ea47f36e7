//! Staging: a release copied to a host's `releases/<id>` with rsync over the host's SSH
//! connection, into `.staging-<id>` seeded with hard links to the host's newest release so
//! that only what changed travels, checked there file by file against the manifest (SHA-256,
//! on the host), and only then renamed into place.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use sqlx::SqlitePool;

use super::delta;
use super::host::Host;
use super::remote;
use super::rsync::rsync;
pub use super::rsync::Sent;
use super::ssh::Ssh;
use super::store;
use super::verify;
use crate::releases::archive::ManifestEntry;
use crate::releases::store as releases;

/// Held while a release is staged on a host.
type One = Arc<tokio::sync::Mutex<()>>;

/// Stages release `id` (from `local`) on `host`, recording each state; `Err` says why not.
pub async fn stage(
    ssh: &Ssh,
    pool: &SqlitePool,
    host: &Host,
    (local, id): (&Path, &str),
    manifest: &[ManifestEntry],
    shared: &[String],
) -> Result<Sent, String> {
    // One staging of a release on a host at a time (the background one after an upload and a
    // go-live that needs it): the second finds the release there and sends nothing.
    let lock = {
        static LOCKS: OnceLock<Mutex<HashMap<(i64, String), One>>> = OnceLock::new();
        let mut all = LOCKS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.entry((host.id, id.to_owned())).or_default().clone()
    };
    let _one = lock.lock().await;
    let t = Instant::now();
    let _ = store::set_staging(pool, host.id, id, "staging", "copying", None).await;
    let result = stage_inner(ssh, pool, host, (local, id), manifest, shared).await;
    let ms = t.elapsed().as_millis() as i64;
    let (state, detail, sent) = match &result {
        Ok(s) => (
            "staged",
            format!("{} files ({} bytes) sent; verified", s.files, s.bytes),
            Some((s.files, s.bytes, ms)),
        ),
        Err(why) => ("failed", why.clone(), None),
    };
    let _ = store::set_staging(pool, host.id, id, state, &detail, sent).await;
    result
}

async fn stage_inner(
    ssh: &Ssh,
    pool: &SqlitePool,
    host: &Host,
    (local, id): (&Path, &str),
    manifest: &[ManifestEntry],
    shared: &[String],
) -> Result<Sent, String> {
    let began = Instant::now();
    if !host.confirmed {
        return Err(format!(
            "host {}'s key has not been confirmed yet.",
            host.name
        ));
    }
    let link = store::newest_staged(pool, host.id, id)
        .await
        .map_err(|e| e.to_string())?;
    let staging = format!("{}/releases/.staging-{id}/", host.dir);
    let setup_ms = began.elapsed().as_millis();
    let copied = Instant::now();
    // The newest release on the host, hard-linked into the staging folder first: rsync then
    // only replaces what changed. (rsync's own --link-dest does the same, but rsync 3.4+
    // opens every component of the link-dest path for each file it checks there: twice the
    // system calls of the whole copy for 20,000 unchanged files.) Seeded from a release
    // whose manifest and layout are known, only the change travels (see delta.rs) and no
    // content times are needed; else the files here get their content-derived times
    // meanwhile, so that rsync's quick check over the whole tree finds the unchanged ones.
    let then = link
        .as_deref()
        .and_then(|prev| delta::layout_of(&local.with_file_name(prev)));
    let timed = then.is_none();
    // The host's folders made, and the seed (listed for the prune when a plan will be made),
    // in one command beside the work here.
    let seed = async {
        let prev = link.as_deref();
        let begun = remote::begin(ssh, host, (id, prev), shared, then.is_some()).await?;
        Ok::<_, String>(match begun {
            remote::Begun::There => (true, None, None),
            remote::Begun::Seeded(listing) => {
                let listing = Some(listing).filter(|_| then.is_some());
                (false, link.clone(), listing)
            }
            remote::Begun::Empty(why) => {
                if let Some(why) = why {
                    tracing::warn!(host = %host.name, ?prev, %why, "copying without links");
                }
                (false, None, None)
            }
        })
    };
    // The manifest of the release linked from: noted with its layout (each host reading
    // 20,000 rows again cost ~20 ms of CPU apiece), else from the database.
    let before = async {
        match (&link, &then) {
            (_, Some(then)) => Some(then.manifest.clone()),
            (Some(prev), None) => linked_manifest(pool, host, prev).await.map(Arc::new),
            (None, None) => None,
        }
    };
    let layout = async {
        let l = times(local, manifest, timed).await;
        (l, copied.elapsed().as_millis())
    };
    // (Each part's end timed, for the log.)
    let seed = async { (seed.await, copied.elapsed().as_millis()) };
    let ((seeded, begin_ms), (layout, layout_ms), before) = tokio::join!(seed, layout, before);
    let (there, link, listing): (bool, Option<String>, Option<String>) = seeded?;
    // Already there and whole (a host added back, a retried staging): nothing to send.
    if there
        && verify::verify(ssh, host, &host.release(id), manifest, None)
            .await?
            .is_none()
    {
        return Ok(Sent::default());
    }
    let layout = layout?;
    let prep_ms = copied.elapsed().as_millis();
    let plan = match (before.as_deref(), then, link.is_some()) {
        (Some(b), Some(then), true) => delta::plan(manifest, b, (&layout, &then)),
        _ => None,
    };
    if plan.is_none() && !layout.timed {
        times(local, manifest, true).await?;
    }
    let listed = match plan {
        Some(mut plan) => {
            // What the seed lacks travels too (and is read when verified: rsync writes it).
            // The seed's listing compared here (only removals sent), else on the host.
            let lost = match listing
                .as_deref()
                .and_then(|l| delta::against(&plan.keep, l))
            {
                Some((gone, missing)) => {
                    remote::remove(ssh, host, id, &gone).await?;
                    missing
                }
                None => remote::prune(ssh, host, id, &plan.keep).await?,
            };
            for lost in lost {
                if let Some(path) = lost.strip_prefix("f ") {
                    plan.send.extend_from_slice(path.as_bytes());
                    plan.send.push(0);
                }
            }
            Some(plan.send)
        }
        None => None,
    };
    let prune_ms = copied.elapsed().as_millis() - prep_ms;
    let fresh = link.is_none();
    let (mut sent, written) = rsync(ssh, host, (local, &staging), listed.as_deref(), fresh).await?;
    let rsync_ms = copied.elapsed().as_millis();
    let checked = Instant::now();
    let prev_dir = link.as_deref().map(|prev| host.release(prev));
    let linked = prev_dir
        .as_deref()
        .zip(before.as_deref().map(Vec::as_slice));
    let bad = match before
        .as_deref()
        .and_then(|b| verify::to_read(manifest, b, &written))
    {
        Some(changed) => verify::verify(ssh, host, &staging, &changed, None).await?,
        None => verify::verify(ssh, host, &staging, manifest, linked).await?,
    };
    if let Some(why) = bad {
        // A file the host changed but kept its size and time: copied again into an empty
        // folder. (Not `rsync --checksum` over the links: it sets the times of the files it
        // finds equal on their inodes, which the release linked from shares.)
        tracing::warn!(host = %host.name, %why, "staged copy differs; copying it whole");
        remote::unseed(ssh, host, id).await?;
        add(
            &mut sent,
            rsync(ssh, host, (local, &staging), None, true).await?.0,
        );
        if let Some(bad) = verify::verify(ssh, host, &staging, manifest, None).await? {
            return Err(format!(
                "the copy on host {} does not match the release ({bad}).",
                host.name
            ));
        }
    }
    let verify_ms = checked.elapsed().as_millis();
    let published = Instant::now();
    remote::publish(ssh, host, id).await?;
    let (ssh, host2, id2) = (ssh.clone(), host.clone(), id.to_owned());
    tokio::spawn(async move {
        if let Err(why) = remote::preseed(&ssh, &host2, &id2).await {
            tracing::warn!(host = %host2.name, release = %id2, %why, "no seed for the next copy");
        }
    });
    tracing::info!(host = %host.name, release = id, files = sent.files, delta = listed.is_some(), setup_ms, prep_ms, begin_ms, layout_ms, prune_ms, rsync_ms, verify_ms,
        publish_ms = published.elapsed().as_millis(), "staged");
    Ok(sent)
}

/// [`content_times`] off the async threads (`timed`: the times set too): the folder's layout.
async fn times(
    local: &Path,
    manifest: &[ManifestEntry],
    timed: bool,
) -> Result<Arc<delta::Layout>, String> {
    let (dir, m) = (local.to_owned(), manifest.to_vec());
    crate::blocking::spawn(move || content_times(&dir, m, timed))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the release's files could not be prepared for copying: {e}"))
}

fn add(sent: &mut Sent, more: Sent) {
    sent.files += more.files;
    sent.bytes += more.bytes;
}

/// The manifest of the release rsync linked from (none: every file is read when verified).
async fn linked_manifest(pool: &SqlitePool, host: &Host, id: &str) -> Option<Vec<ManifestEntry>> {
    let release = releases::get(pool, host.site_id, id).await.ok()?;
    releases::manifest(pool, release.pk).await.ok()
}

/// Gives every file of the release an mtime derived from its SHA-256 and mode. Each release
/// is unpacked afresh, so its files' own times are new even where the content is unchanged;
/// with times that follow the content, rsync's quick check (size and time) finds the files
/// the host's newest release already has (linked into the copy, see [`remote::begin`])
/// without reading any of them, and sends the rest. A file whose mode changed gets another
/// time, so rsync writes it anew instead of changing the mode of a file the live release
/// shares. (The times fall between 2001 and 2011: they name content, not a date.) Done once
/// per release folder, however many hosts stage it at once. Not `timed`: only the layout is
/// read (each file's mode, the folders), for a copy that sends only the change.
fn content_times(
    dir: &Path,
    manifest: Vec<ManifestEntry>,
    timed: bool,
) -> std::io::Result<Arc<delta::Layout>> {
    static ONE: Mutex<()> = Mutex::new(());
    // Held while the times are set: a second host staging the same release waits, then finds
    // it done (its layout noted).
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(done) = delta::layout_of(dir).filter(|l| l.timed || !timed) {
        return Ok(done);
    }
    // In parallel (a first staging waits for this before rsync starts): the files in one part
    // per CPU (20,000 files: ~100 → ~50 ms here), the folders beside them.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let per = manifest.len().div_ceil(cpus).max(2000);
    let (modes, dirs) = std::thread::scope(|s| {
        let parts: Vec<_> = manifest
            .chunks(per)
            .map(|part| s.spawn(move || file_times(dir, part, timed)))
            .collect();
        let dirs = delta::folders(dir);
        let mut modes = HashMap::with_capacity(manifest.len());
        for part in parts {
            let done = part
                .join()
                .map_err(|_| std::io::Error::other("a thread failed"))?;
            modes.extend(done?);
        }
        Ok::<_, std::io::Error>((modes, dirs?))
    })?;
    let layout = delta::Layout {
        modes,
        manifest: Arc::new(manifest),
        timed,
        plain: dirs.is_some(),
        dirs: dirs.unwrap_or_default(),
    };
    Ok(delta::note(dir, layout))
}

/// The mode of each file of `part` (and, `timed`, its content-derived time set): see
/// [`content_times`].
fn file_times(
    dir: &Path,
    part: &[ManifestEntry],
    timed: bool,
) -> std::io::Result<HashMap<String, u32>> {
    use std::os::unix::fs::PermissionsExt as _;

    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let mut modes = HashMap::with_capacity(part.len());
    for f in part {
        let path = dir.join(&f.path);
        let mode = std::fs::symlink_metadata(&path)?.permissions().mode() & 0o7777;
        let seed = u64::from_str_radix(f.sha256.get(..12).unwrap_or("0"), 16).unwrap_or(0);
        let secs = 1_000_000_000 + ((seed ^ (u64::from(mode) << 40)) % 300_000_000) as i64;
        let t = TimeSpec::new(secs, 0);
        if timed {
            utimensat(None, &path, &t, &t, UtimensatFlags::NoFollowSymlink)
                .map_err(std::io::Error::from)?;
        }
        modes.insert(f.path.clone(), mode);
    }
    Ok(modes)
}
