-- 0009: delivery receipts update their reply without touching an index.
-- outbox_work was partial on `state`, so every state change — the receipt's submitted →
-- delivered among them — counted as a change of an indexed column: no HOT update, a new entry
-- in each of the four outbox indexes per receipt (2.35 non-HOT outbox updates per donation in
-- docs/performance.md). The open-work index is keyed on closed_at instead: set once when a
-- reply leaves the queue (submitted or failed), never cleared, so the receipt's update touches
-- no indexed column and, with room on the page (fillfactor 80), stays HOT.
ALTER TABLE outbox ADD COLUMN closed_at timestamptz;
UPDATE outbox SET closed_at = coalesce(submitted_at, updated_at) WHERE state NOT IN ('pending', 'claimed');
ALTER TABLE outbox SET (fillfactor = 80);
CREATE INDEX outbox_open ON outbox (operator, next_attempt_at) WHERE closed_at IS NULL;
DROP INDEX outbox_work;
