-- Several web servers (issue 17): the hosts that serve a site over OpenSSH, each one's pinned
-- host key, what it serves as last seen, and per release whether it is staged there.
CREATE TABLE hosts (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites (id),
    name         TEXT NOT NULL,
    ssh_user     TEXT NOT NULL,
    address      TEXT NOT NULL,
    port         INTEGER NOT NULL,
    dir          TEXT NOT NULL,
    vhost_dir    TEXT NOT NULL,
    log_dir      TEXT NOT NULL,
    configtest   TEXT NOT NULL,                 -- JSON array: program and arguments
    reload       TEXT NOT NULL,                 -- JSON array
    check_url    TEXT NOT NULL,
    host_key     TEXT NOT NULL,                 -- "type base64" as ssh-keyscan gave it
    fingerprint  TEXT NOT NULL,
    confirmed    INTEGER NOT NULL DEFAULT 0,
    serving      TEXT,                          -- the release it serves, as last switched/checked
    checked_at   TEXT,
    drift        TEXT,                          -- why it disagrees with the records, if it does
    created_at   TEXT NOT NULL,
    UNIQUE (site_id, name)
);
CREATE TABLE host_releases (
    host_id      INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    release_id   TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('staging', 'staged', 'failed', 'deleted')),
    detail       TEXT NOT NULL DEFAULT '',
    files_sent   INTEGER,
    bytes_sent   INTEGER,
    ms           INTEGER,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (host_id, release_id)
);
