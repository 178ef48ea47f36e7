-- The review page filters by time range and outcome; these keep it fast at a million events.
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_outcome ON audit_events (outcome, id);
