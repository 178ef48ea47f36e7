-- What start-up reconciliation found on disk that disagrees with the database (shown as a
-- banner on the site's page until the next successful switch).
ALTER TABLE sites ADD COLUMN drift TEXT;
