-- 0013: a donation's ordinary outcome is proved by rows the outcome transaction writes anyway
-- (its charge rows, its journal, the donation row itself), so it no longer gets a
-- donation_transition row that restates them (each fact is written once; the row cost a
-- heap tuple, two index entries and a foreign-key check per donation).
--
-- The outcome transaction records, on the donation row it updates anyway:
--   final_state  the state it reached (the donation's `state` may later become `reversed`)
--   final_by     the instance that recorded it
-- and writes a history row only for transitions nothing else proves: claims, deferrals,
-- unknown outcomes and their resolution, confirmation steps, reversals, and outcomes whose
-- transition reason differs from the stored failure_reason. Rows written before this
-- migration keep their history rows and have final_state NULL.
--
-- donation_history is what readers use (the finance lookup): the history rows, plus one row
-- per donation whose outcome was recorded this way, in the shape of a history row.
ALTER TABLE donation
  ADD COLUMN final_state text CONSTRAINT donation_final_state_check
    CHECK (final_state IN ('charged', 'partially_charged', 'failed')),
  ADD COLUMN final_by text,
  ADD CONSTRAINT donation_final_recorded CHECK ((final_state IS NULL) = (final_by IS NULL));

CREATE VIEW donation_history AS
SELECT t.donation_id, t.from_state, t.to_state, t.reason, t.actor, t.at, t.id AS seq
  FROM donation_transition t
UNION ALL
SELECT d.id, 'charging', d.final_state, coalesce(d.failure_reason, d.final_state), d.final_by,
       d.final_at, NULL
  FROM donation d
 WHERE d.final_state IS NOT NULL;

GRANT SELECT ON donation_history TO donagate_finance, donagate_daemon, donagate_console;
