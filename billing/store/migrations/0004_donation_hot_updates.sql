-- 0004: cheaper donation updates.
-- The work-queue index donation_work was partial on `state`, so every state change (the claim's
-- received → charging, an outcome) counted as a change of an indexed column: no HOT update, a
-- new entry in all five donation indexes per change. The open-work index is keyed on final_at
-- instead (set when a donation reaches charged / partially_charged / failed, never cleared),
-- so the claim and the replied_at update touch no indexed column and, with room left on the
-- page (fillfactor 80), stay HOT: one heap write, no index writes (docs/performance.md).
-- Building the index reads the table once; it holds only unfinished donations.
ALTER TABLE donation SET (fillfactor = 80);
CREATE INDEX donation_open ON donation (next_attempt_at, id) WHERE final_at IS NULL;
DROP INDEX donation_work;
