-- Schema version 2: runs carry their first error message, so the Runs page can search and show it
-- without touching steps. Backfilled from the steps already stored.
ALTER TABLE runs ADD COLUMN error VARCHAR;
UPDATE runs SET error = e.error
FROM (SELECT run_id, arg_min(error, seq) AS error FROM steps WHERE error IS NOT NULL GROUP BY run_id) AS e
WHERE runs.run_id = e.run_id;
