-- 0005: apply_receipt() as one SQL statement instead of PL/pgSQL, same contract (0001): applies
-- one delivery receipt to the reply that carries p_message_id, or parks it in pending_receipt;
-- true when a reply was found; a failure state is never overwritten by a later DELIVRD.
-- Why: called once per receipt (thousands per second), the PL/pgSQL body re-planned its
-- statements on every call under plan_cache_mode = force_custom_plan (which the daemon needs for
-- its batch statements); a SQL function's statement is planned once per calling statement and
-- reused for every row of the batch (docs/performance.md).
CREATE OR REPLACE FUNCTION apply_receipt(p_operator text, p_message_id text, p_stat text,
                                         p_err text, p_done_at timestamptz,
                                         p_inbound_message_id bigint)
RETURNS boolean LANGUAGE sql AS $$
WITH target AS (
  SELECT m.outbox_id FROM outbox_message_id m
   WHERE m.operator = p_operator AND m.smsc_message_id = p_message_id
   ORDER BY m.outbox_id DESC LIMIT 1),
parked AS (
  INSERT INTO pending_receipt (operator, smsc_message_id, stat, err, done_at, inbound_message_id)
  SELECT p_operator, p_message_id, p_stat, p_err, p_done_at, p_inbound_message_id
   WHERE NOT EXISTS (SELECT 1 FROM target)),
applied AS (
  UPDATE outbox o
     SET receipt_stat = p_stat, receipt_err = p_err, receipt_at = coalesce(p_done_at, now()),
         state = CASE
                   WHEN o.state IN ('undeliverable', 'expired', 'rejected', 'failed') THEN o.state
                   ELSE coalesce(CASE upper(p_stat)
                                   WHEN 'DELIVRD' THEN 'delivered'
                                   WHEN 'UNDELIV' THEN 'undeliverable'
                                   WHEN 'EXPIRED' THEN 'expired'
                                   WHEN 'REJECTD' THEN 'rejected'
                                   WHEN 'DELETED' THEN 'failed'
                                   ELSE NULL END,  -- ACCEPTD, ENROUTE, UNKNOWN: keep the state
                                 o.state)
                 END,
         updated_at = now()
    FROM target t WHERE o.id = t.outbox_id)
SELECT EXISTS (SELECT 1 FROM target)
$$;
