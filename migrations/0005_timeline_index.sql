-- The deployment timeline looks up a site's failed switches among all its events.
CREATE INDEX audit_events_site_action ON audit_events (site, action, outcome, id);
