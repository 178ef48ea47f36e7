-- Sites, their releases (with a manifest of every file), and the record of activations.

CREATE TABLE sites (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    server_name    TEXT NOT NULL,
    aliases        TEXT NOT NULL DEFAULT '[]',          -- JSON array of host names
    keep_releases  INTEGER NOT NULL DEFAULT 5 CHECK (keep_releases BETWEEN 1 AND 100),
    switch_mode    TEXT NOT NULL DEFAULT 'pinned' CHECK (switch_mode IN ('pinned', 'symlink')),
    health_path    TEXT NOT NULL DEFAULT '/',
    shared_paths   TEXT NOT NULL DEFAULT '[]',          -- JSON array of relative paths
    reload_always  INTEGER NOT NULL DEFAULT 0 CHECK (reload_always IN (0, 1)),
    active_release TEXT,                                -- release_id of the live release
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE releases (
    id              INTEGER PRIMARY KEY,
    site_id         INTEGER NOT NULL REFERENCES sites (id),
    release_id      TEXT NOT NULL,                      -- also the folder name under releases/
    state           TEXT NOT NULL CHECK (state IN ('ready', 'failed', 'deleted')),
    sha256          TEXT NOT NULL,
    archive_bytes   INTEGER NOT NULL,
    unpacked_bytes  INTEGER NOT NULL DEFAULT 0,
    files           INTEGER NOT NULL DEFAULT 0,
    format          TEXT,
    uploaded_by     TEXT NOT NULL,
    uploaded_at     TEXT NOT NULL,
    note            TEXT NOT NULL DEFAULT '',
    original_name   TEXT NOT NULL DEFAULT '',
    pinned          INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    failure_code    TEXT,
    failure_message TEXT,
    deleted_at      TEXT,
    deleted_by      TEXT,
    UNIQUE (site_id, release_id)
);
CREATE INDEX releases_site ON releases (site_id, id);
CREATE INDEX releases_site_sha ON releases (site_id, sha256);

CREATE TABLE release_files (
    release_pk INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (release_pk, path)
) WITHOUT ROWID;

-- Every time a release went live, and how that ended: the source of "previous release".
CREATE TABLE activations (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites (id),
    release_id   TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('activate', 'rollback', 'auto_rollback', 'adopted')),
    activated_by TEXT NOT NULL,
    activated_at TEXT NOT NULL,
    ended_at     TEXT,
    ended_how    TEXT
);
CREATE INDEX activations_site ON activations (site_id, id);
