-- How a site is served beyond its names (issues 12 and 13): runtime, index, PHP settings,
-- Options, AllowOverride, extra directives, maintenance. One JSON object, validated in Rust;
-- '{}' means every default, as sites had before.
ALTER TABLE sites ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
