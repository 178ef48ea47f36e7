-- API tokens may expire (issue 16): NULL = never, as before.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
