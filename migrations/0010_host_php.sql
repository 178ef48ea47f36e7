-- PHP sites on several hosts (issue 17): each host's PHP-FPM (pool folder, socket folder,
-- test and reload commands, workers' user) as JSON; empty means Debian's defaults.
ALTER TABLE hosts ADD COLUMN php TEXT NOT NULL DEFAULT '';
