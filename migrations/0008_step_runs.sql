-- Deploy steps (issue 15): every run of a site's own command, with its output (capped), so
-- the release page, the go-live result and a restart after a crash can say what came of it.
-- `pgid` and `boot_id` let the next start stop a step's processes left by a killed console.
CREATE TABLE step_runs (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites (id),
    release_id   TEXT NOT NULL,
    stage        TEXT NOT NULL CHECK (stage IN ('after_unpack', 'before_switch', 'after_switch')),
    command      TEXT NOT NULL,                 -- JSON array: program and arguments
    run_as       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    pgid         INTEGER,
    boot_id      TEXT,
    started_at   TEXT NOT NULL,
    ended_at     TEXT,
    outcome      TEXT NOT NULL DEFAULT 'running'
                 CHECK (outcome IN ('running', 'ok', 'failed', 'timed_out', 'interrupted')),
    exit_code    INTEGER,
    summary      TEXT NOT NULL DEFAULT '',
    output       TEXT NOT NULL DEFAULT '',
    output_bytes INTEGER NOT NULL DEFAULT 0,
    ms           INTEGER
);
CREATE INDEX step_runs_release ON step_runs (site_id, release_id, id);
CREATE INDEX step_runs_running ON step_runs (outcome) WHERE outcome = 'running';
