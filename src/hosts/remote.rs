//! What Cutover does on a host, each a fixed POSIX `sh` script of ours run through
//! [`Ssh::run`](crate::hosts::Ssh::run) with the values as its positional arguments (never spliced
//! into the script): the folders, the seed of a copy, the switch, what it serves, the vhost.

use super::host::Host;
use super::ssh::Ssh;
use super::ssh::{Remote, SshError};

/// Held while a host's seeds change (made, taken, removed): a seed renamed into a copy while
/// a background `rm -rf` still works inside it would lose files after the copy's listing,
/// which the verification (it reads only what changed) would not notice. One per host (per
/// site's host record); the console is the hosts' only writer.
async fn seeds_of(host: &Host) -> tokio::sync::OwnedMutexGuard<()> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Locks = Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>;
    static LOCKS: OnceLock<Locks> = OnceLock::new();
    let one = {
        let mut all = LOCKS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.entry(host.id).or_default().clone()
    };
    one.lock_owned().await
}

/// Runs `script` with `args` as `$1…` on `host`.
pub(super) async fn sh(
    ssh: &Ssh,
    host: &Host,
    script: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<Remote, SshError> {
    ssh.run(host, &sh_argv(script, args), stdin).await
}

/// `sh -c SCRIPT cutover ARGS…`: the values reach the script as `$1…`, never inside it.
pub(super) fn sh_argv(script: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "cutover".to_owned(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv
}

/// A remote step's failure in one sentence: ssh's own, or the script's words.
pub fn failed(r: Result<Remote, SshError>) -> Result<Remote, String> {
    match r {
        Ok(r) if r.ok => Ok(r),
        Ok(r) => Err(if r.stderr.is_empty() {
            "the command failed".into()
        } else {
            r.stderr
        }),
        Err(e) => Err(e.to_string()),
    }
}

/// How [`begin`] left `.staging-<id>` on the host.
#[derive(Debug, PartialEq, Eq)]
pub enum Begun {
    /// `releases/<id>` is there already (the staging folder empty).
    There,
    /// Empty: nothing to seed from, or (why) the seed could not be made.
    Empty(Option<String>),
    /// Seeded from the release asked for; its entries, when asked for.
    Seeded(String),
}

/// [`begin`]'s script: `$1` the site folder, `$2` the id, `$3` the release to seed from (or
/// empty), `$4` "list" (or empty), then the shared folders.
const BEGIN: &str = r#"set -e; d=$1; id=$2; prev=$3; list=$4; shift 4
mkdir -p "$d/releases" "$d/shared"; for p in "$@"; do mkdir -p "$d/shared/$p"; done
cd "$d/releases"; rm -rf ".staging-$id"
empty() { rm -rf ".staging-$id"; mkdir ".staging-$id"; echo "empty $1"; exit 0; }
if [ -d "$id" ]; then mkdir ".staging-$id"; echo there; exit 0; fi
[ -n "$prev" ] || empty ""
[ -d "$prev" ] || empty "release $prev is not on this host"
{ [ -d ".seed-$prev" ] && mv -T ".seed-$prev" ".staging-$id" 2>/dev/null; } || cp -al -- "$prev" ".staging-$id" 2>/dev/null || empty "its files could not be linked"
[ -n "$list" ] || { echo seeded; exit 0; }
l=$(mktemp) || empty "no temporary file"; nl='
'
(cd ".staging-$id" && find . -mindepth 1 \( -path "*$nl*" -prune -exec rm -rf -- {} + \) -o -printf '%y %P\0' > "$l") || { rm -f "$l"; empty "its files could not be listed"; }
echo seeded; cat "$l"; rm -f "$l""#;

/// Begins a copy, in one command: `releases/`, `shared/` and each shared folder made on the
/// host; `.staging-<id>` made afresh (what an earlier attempt left, hard links to a live
/// release perhaps, removed: a copy into an unseeded folder writes its files in place);
/// then, unless `releases/<id>` is there already, seeded with hard links to every file of
/// `releases/<prev>` (`cp -al`: no file is read or copied), or the seed [`preseed`] made in
/// the background taken instead (one rename). rsync writes every file it changes anew and
/// renames it into place, so the linked release is never written through a link; a file
/// whose mode changed changes its content-derived time too (`stage.rs`), so rsync replaces
/// it rather than changing the shared file's mode. `list`: the seed's entries listed for the
/// prune (`find -printf '%y %P\0'`; names with a line break are removed instead). A seed
/// that cannot be made or listed leaves the folder empty.
pub async fn begin(
    ssh: &Ssh,
    host: &Host,
    (id, prev): (&str, Option<&str>),
    shared: &[String],
    list: bool,
) -> Result<Begun, String> {
    let list = if list { "list" } else { "" };
    let mut args = vec![host.dir.as_str(), id, prev.unwrap_or(""), list];
    args.extend(shared.iter().map(String::as_str));
    let _seeds = seeds_of(host).await;
    let r = failed(sh(ssh, host, BEGIN, &args, None).await)?;
    begun(&r.stdout)
}

/// [`begin`]'s answer read: its first line `there`, `seeded` (the listing after it) or
/// `empty [why]`. Anything else is an error: a seeded folder must never be taken for an
/// empty one (a copy into it in place would write through its links).
fn begun(out: &str) -> Result<Begun, String> {
    let (first, rest) = out.split_once('\n').unwrap_or((out, ""));
    match first {
        "there" => Ok(Begun::There),
        "seeded" => Ok(Begun::Seeded(rest.to_owned())),
        "empty" => Ok(Begun::Empty(None)),
        other => match other.strip_prefix("empty ") {
            Some(why) => Ok(Begun::Empty(Some(why.trim().to_owned()).filter(|w| !w.is_empty()))),
            None => Err(format!("the host answered unexpectedly ({other:?}) when the copy began: check that the login shell of its user prints nothing.")),
        },
    }
}

/// Removes `gone` (NUL-separated paths, from [`delta::against`](super::delta::against)) from
/// the seeded `.staging-<id>`: what [`prune`] does when the seed's listing was compared here
/// (~100 ms per host fewer than its `awk` on the host; no command at all for a release that
/// only changed files).
pub async fn remove(ssh: &Ssh, host: &Host, id: &str, gone: &[u8]) -> Result<(), String> {
    const SCRIPT: &str = r#"cd "$1/releases/.staging-$2" || exit 3; xargs -0r rm -rf --"#;
    if gone.is_empty() {
        return Ok(());
    }
    failed(sh(ssh, host, SCRIPT, &[&host.dir, id], Some(gone)).await).map(drop)
}

/// Removes from the seeded `.staging-<id>` every file and folder the new release does not
/// have, and names what it should have and has not (the seed's release lost a file on the
/// host, say): stdin is the list of what stays ([`Plan::keep`](super::delta::Plan)), each line
/// its type (`d` or `f`) and path, as `find -printf '%y %P'` prints them; the answer, the
/// lines of that list missing there. Used when the seed was not listed, or a name in its
/// listing came back altered (not UTF-8). (A name with a line break is never kept: the
/// release has none when a plan is made.)
pub async fn prune(ssh: &Ssh, host: &Host, id: &str, keep: &[u8]) -> Result<Vec<String>, String> {
    const SCRIPT: &str = r#"cd "$1/releases/.staging-$2" || exit 3; t=$(mktemp) || exit 3
trap 'rm -f "$t" "$t.here" "$t.gone"' EXIT
cat > "$t"
nl='
'
find . -mindepth 1 -path "*$nl*" -prune -exec rm -rf -- {} + || exit 4
find . -mindepth 1 -printf '%y %P\n' > "$t.here" || exit 4
awk -v K="$t" -v G="$t.gone" 'BEGIN { while ((getline l < K) > 0) keep[l] = 1; printf "" > G }
  { if ($0 in keep) delete keep[$0]; else print substr($0, 3) > G }
  END { for (k in keep) print k }' "$t.here" || exit 4
tr '\n' '\0' < "$t.gone" | xargs -0r rm -rf -- || exit 4"#;
    let r = failed(sh(ssh, host, SCRIPT, &[&host.dir, id], Some(keep)).await)?;
    Ok(r.stdout.lines().map(str::to_owned).collect())
}

/// Makes `.seed-<id>`, hard links to every file of `releases/<id>`, for the next copy's
/// [`begin`]: run in the background once `<id>` is staged, it takes linking 20,000 files
/// (~0.12 s of CPU per host here) off the next staging. Made under `.seeding-<id>` and renamed
/// only when whole; older seeds go. A seed holds links to the release's own (verified) files
/// and nothing else: a seed left partial by a race costs the next copy time, never content.
pub async fn preseed(ssh: &Ssh, host: &Host, id: &str) -> Result<(), String> {
    const SCRIPT: &str = r#"set -e; cd "$1/releases"; [ -d "$2" ] || exit 0
rm -rf -- .seed-* .seeding-*
cp -al -- "$2" ".seeding-$2" || { rm -rf -- ".seeding-$2"; exit 1; }
mv -T ".seeding-$2" ".seed-$2""#;
    let _seeds = seeds_of(host).await;
    failed(sh(ssh, host, SCRIPT, &[&host.dir, id], None).await).map(drop)
}

/// Empties `.staging-<id>`: the next copy starts from nothing.
pub async fn unseed(ssh: &Ssh, host: &Host, id: &str) -> Result<(), String> {
    const SCRIPT: &str = r#"set -e; cd "$1/releases"; rm -rf ".staging-$2"; mkdir ".staging-$2""#;
    failed(sh(ssh, host, SCRIPT, &[&host.dir, id], None).await).map(drop)
}

/// Renames the verified `.staging-<id>` into `releases/<id>` (an older copy of the same id,
/// never the live one, is moved aside first and removed after).
pub async fn publish(ssh: &Ssh, host: &Host, id: &str) -> Result<(), String> {
    const SCRIPT: &str = r#"set -e; cd "$1/releases"; id=$2
if [ -e "$id" ]; then
  [ "$(readlink ../current 2>/dev/null)" != "releases/$id" ] || { echo "release $id is live on this host with other content" >&2; exit 5; }
  rm -rf ".old-$id"; mv -T "$id" ".old-$id"
fi
mv -T ".staging-$id" "$id"; rm -rf ".old-$id""#;
    failed(sh(ssh, host, SCRIPT, &[&host.dir, id], None).await).map(drop)
}

/// What a host has, as [`state`] reads it.
#[derive(Debug, Clone, Default)]
pub struct HostState {
    /// The release `current` names.
    pub live: Option<String>,
    /// `releases/<id>` (of the id asked about) is a folder.
    pub has_release: bool,
    /// `live.map` exists.
    pub has_map: bool,
    /// The vhost file's text, if there is one.
    pub vhost: Option<String>,
}

/// What the host serves and has: `current`, whether `releases/<id>` and `live.map` exist,
/// and the vhost file's text.
pub async fn state(ssh: &Ssh, host: &Host, vhost: &str, id: &str) -> Result<HostState, String> {
    const SCRIPT: &str = r#"cd "$1" 2>/dev/null || { printf -- '-\nno\nno\n'; exit 0; }
l=$(readlink current 2>/dev/null) && printf '%s\n' "$l" || printf -- '-\n'
[ -d "releases/$3" ] && echo yes || echo no
[ -e live.map ] && echo yes || echo no
[ -e "$2" ] && cat "$2" || true"#;
    let r = failed(sh(ssh, host, SCRIPT, &[&host.dir, vhost, id], None).await)?;
    let mut parts = r.stdout.splitn(4, '\n');
    let live = parts.next().unwrap_or("-");
    let has_release = parts.next() == Some("yes");
    let has_map = parts.next() == Some("yes");
    let rest = parts.next().unwrap_or("");
    Ok(HostState {
        live: live
            .strip_prefix("releases/")
            .filter(|id| crate::vocab::is_release_id(id))
            .map(str::to_owned),
        has_release,
        has_map,
        vhost: (!rest.is_empty()).then(|| rest.to_owned()),
    })
}

/// Writes `content` to `path` (whole, then renamed into place).
pub async fn write_file(ssh: &Ssh, host: &Host, path: &str, content: &str) -> Result<(), String> {
    const SCRIPT: &str = r#"set -e; t="$1.cutover-tmp"; cat > "$t"; mv -T "$t" "$1""#;
    failed(sh(ssh, host, SCRIPT, &[path], Some(content.as_bytes())).await).map(drop)
}

/// Removes a file, if it is there.
pub async fn remove_file(ssh: &Ssh, host: &Host, path: &str) -> Result<(), String> {
    failed(sh(ssh, host, r#"rm -f -- "$1""#, &[path], None).await).map(drop)
}

/// Undoes a first activation: no `current`, no `live.map`.
pub async fn remove_current(ssh: &Ssh, host: &Host) -> Result<(), String> {
    failed(
        sh(
            ssh,
            host,
            r#"cd "$1" && rm -f current live.map"#,
            &[&host.dir],
            None,
        )
        .await,
    )
    .map(drop)
}

/// Removes `releases/<id>` (never the one `current` names).
pub async fn delete_release(ssh: &Ssh, host: &Host, id: &str) -> Result<(), String> {
    const SCRIPT: &str = r#"cd "$1" || exit 0; [ "$(readlink current 2>/dev/null)" != "releases/$2" ] || { echo "release $2 is live on this host" >&2; exit 5; }; rm -rf "releases/$2" "releases/.staging-$2" "releases/.seed-$2" "releases/.seeding-$2""#;
    let _seeds = seeds_of(host).await;
    failed(sh(ssh, host, SCRIPT, &[&host.dir, id], None).await).map(drop)
}

/// Runs one of the host's own commands (configtest, reload): ok, and its words.
pub async fn command(ssh: &Ssh, host: &Host, argv: &[String]) -> (bool, String) {
    match ssh.run(host, argv, None).await {
        Ok(r) => {
            let words = format!("{}\n{}", r.stdout.trim(), r.stderr.trim())
                .trim()
                .to_owned();
            (
                r.ok,
                if words.is_empty() && r.ok {
                    "ok".into()
                } else {
                    words
                },
            )
        }
        Err(e) => (false, e.to_string()),
    }
}

/// The text of a file on the host, if it is there.
pub async fn read_file(ssh: &Ssh, host: &Host, path: &str) -> Result<Option<String>, String> {
    const SCRIPT: &str = r#"if [ -e "$1" ]; then echo yes; cat -- "$1"; else echo no; fi"#;
    let r = failed(sh(ssh, host, SCRIPT, &[path], None).await)?;
    Ok(r.stdout.strip_prefix("yes\n").map(str::to_owned))
}

/// The pool's private folders (mode 1733, as Debian's PHP session folder: its workers may
/// create files there, nobody may list them).
pub async fn prepare_php(ssh: &Ssh, host: &Host) -> Result<(), String> {
    const SCRIPT: &str =
        r#"set -e; mkdir -p "$1/tmp" "$1/sessions"; chmod 1733 "$1/tmp" "$1/sessions""#;
    failed(sh(ssh, host, SCRIPT, &[&host.php_state()], None).await).map(drop)
}

/// The host's PHP-FPM reloaded, and the site's socket there again (within 15 s).
pub async fn reload_php(ssh: &Ssh, host: &Host, site: &str) -> Result<(), String> {
    let (ok, words) = command(ssh, host, &host.php.reload).await;
    if !ok {
        return Err(format!(
            "PHP-FPM on host {} did not reload: {words}",
            host.name
        ));
    }
    // The master re-executes itself and makes its sockets again.
    const SCRIPT: &str = r#"sleep 0.1; i=0; while [ ! -S "$1" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; [ -S "$1" ] || { echo "no socket $1 after the reload" >&2; exit 4; }"#;
    failed(sh(ssh, host, SCRIPT, &[&host.php_socket(site)], None).await)
        .map(drop)
        .map_err(|e| format!("PHP-FPM on host {}: {e}", host.name))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use crate::hosts::remote::*;

    /// [`BEGIN`] run here as the host runs it, for release `id` from `prev`.
    fn run(dir: &Path, id: &str, prev: &str, list: bool) -> Begun {
        let out = Command::new("sh")
            .args(["-c", BEGIN, "cutover"])
            .arg(dir)
            .args([id, prev, if list { "list" } else { "" }, "uploads"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        begun(&String::from_utf8(out.stdout).unwrap()).unwrap()
    }

    #[test]
    fn a_copy_begins_from_the_seed_or_from_nothing_and_never_from_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, releases) = (tmp.path(), tmp.path().join("releases"));
        // Nothing to seed from: an empty folder, even where an attempt left files.
        std::fs::create_dir_all(releases.join(".staging-r2/old")).unwrap();
        assert_eq!(run(d, "r2", "", false), Begun::Empty(None));
        assert!(d.join("shared/uploads").is_dir());
        let staging = releases.join(".staging-r2");
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
        // The release to seed from is not there: empty, and why.
        let Begun::Empty(Some(why)) = run(d, "r2", "r1", true) else {
            panic!("seeded from nothing")
        };
        assert!(why.contains("r1 is not on this host"), "{why}");
        // Seeded by linking, listed.
        std::fs::create_dir_all(releases.join("r1/a")).unwrap();
        std::fs::write(releases.join("r1/a/x"), "x").unwrap();
        let Begun::Seeded(listing) = run(d, "r2", "r1", true) else {
            panic!("not seeded")
        };
        let mut entries: Vec<&str> = listing.split('\0').filter(|e| !e.is_empty()).collect();
        entries.sort();
        assert_eq!(entries, ["d a", "f a/x"]);
        // The seed made ahead is taken whole (renamed), not listed when not asked.
        std::fs::create_dir_all(releases.join(".seed-r1/b")).unwrap();
        assert_eq!(run(d, "r2", "r1", false), Begun::Seeded(String::new()));
        assert!(staging.join("b").is_dir() && !releases.join(".seed-r1").exists());
        // Already there: nothing seeded.
        std::fs::create_dir_all(releases.join("r2")).unwrap();
        assert_eq!(run(d, "r2", "r1", true), Begun::There);
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
        // Words before the answer (a noisy login shell) are not read as "empty".
        assert!(begun("Welcome!\nseeded\n").is_err());
        assert!(begun("").is_err());
    }
}
