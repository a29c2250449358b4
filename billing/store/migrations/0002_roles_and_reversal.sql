-- 0002: database roles and the reversal function.
--
--   donagate_daemon   what donagated needs: read and insert everywhere, update only the
--                     work-state tables; never UPDATE/DELETE/TRUNCATE the ledger or history.
--   donagate_finance  read-only, for reports, exports and reconciliation.
--   donagate_reverse  may call reverse_donation() (SECURITY DEFINER) and nothing else.
--
-- Roles are cluster-wide while migrations run per database, so creation is guarded (several
-- databases of one cluster may be migrated at the same moment). They are NOLOGIN groups:
-- grant them to login roles (docs/database.md).
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['donagate_daemon', 'donagate_finance', 'donagate_reverse'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created concurrently by a migration of another database
      END;
    END IF;
  END LOOP;
END $$;

DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO donagate_daemon, donagate_finance, donagate_reverse',
                 current_database());
END $$;
GRANT USAGE ON SCHEMA public TO donagate_daemon, donagate_finance, donagate_reverse;

-- Finance: read everything, including tables later migrations add.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO donagate_finance;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO donagate_finance;

-- Daemon: read and insert everywhere ...
GRANT SELECT, INSERT ON inbound_message, mo_part, donation, donation_transition, charge,
  ledger_entry, outbox, outbox_message_id, pending_receipt TO donagate_daemon;
GRANT SELECT ON schema_migrations TO donagate_daemon;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO donagate_daemon;
-- ... update only work state (never inbound_message, the ledger or the history) ...
GRANT UPDATE ON mo_part, donation, charge, outbox TO donagate_daemon;
-- ... and delete only parked receipts once applied.
GRANT DELETE ON pending_receipt TO donagate_daemon;
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_entry, donation_transition, inbound_message
  FROM donagate_daemon, donagate_finance, donagate_reverse;

-- Appends the reversing journal of a charged donation: for every original journal of the
-- donation, the opposite rows (same accounts and amounts, debit <-> credit), all under one new
-- journal id, each referencing the journal it reverses. Marks the donation reversed and
-- records who and why. Idempotent: a second call returns the existing reversal and writes
-- nothing. Refuses donations that are not charged or partially charged.
CREATE FUNCTION reverse_donation(p_donation_id bigint, p_reason text, p_actor text)
RETURNS TABLE (reversal_journal_id bigint, reversed_amount_vnd bigint, already_reversed boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  d       donation%ROWTYPE;
  journal bigint;
  total   bigint;
BEGIN
  IF p_reason IS NULL OR btrim(p_reason) = '' THEN
    RAISE EXCEPTION 'a reversal needs a reason' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_actor IS NULL OR btrim(p_actor) = '' THEN
    RAISE EXCEPTION 'a reversal needs an actor' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT * INTO d FROM donation WHERE id = p_donation_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'donation % does not exist', p_donation_id USING ERRCODE = 'no_data_found';
  END IF;
  IF d.state = 'reversed' THEN
    SELECT coalesce(sum(l.amount_vnd) FILTER (WHERE l.direction = 'debit'), 0) INTO total
      FROM ledger_entry l WHERE l.journal_id = d.reversal_journal_id;
    RETURN QUERY SELECT d.reversal_journal_id, total, true;
    RETURN;
  END IF;
  IF d.state NOT IN ('charged', 'partially_charged') THEN
    RAISE EXCEPTION 'donation % is not charged (state %): nothing to reverse', p_donation_id, d.state
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;

  journal := nextval('ledger_journal_id_seq');
  INSERT INTO ledger_entry (journal_id, account, direction, amount_vnd, donation_id, charge_key,
                            reverses_journal_id, memo, created_by)
  SELECT journal, l.account,
         CASE l.direction WHEN 'debit' THEN 'credit' ELSE 'debit' END,
         l.amount_vnd, l.donation_id, l.charge_key, l.journal_id, p_reason, p_actor
    FROM ledger_entry l
   WHERE l.donation_id = p_donation_id AND l.reverses_journal_id IS NULL
   ORDER BY l.id;
  SELECT coalesce(sum(l.amount_vnd) FILTER (WHERE l.direction = 'debit'), 0) INTO total
    FROM ledger_entry l WHERE l.journal_id = journal;
  IF total = 0 THEN
    RAISE EXCEPTION 'donation % is % but has no ledger rows', p_donation_id, d.state
      USING ERRCODE = 'data_corrupted';
  END IF;

  UPDATE donation SET state = 'reversed', reversal_journal_id = journal, updated_at = now(),
                      lease_owner = NULL, lease_until = NULL
   WHERE id = p_donation_id;
  INSERT INTO donation_transition (donation_id, from_state, to_state, reason, actor)
  VALUES (p_donation_id, d.state, 'reversed', p_reason, p_actor);
  RETURN QUERY SELECT journal, total, false;
END $$;

REVOKE ALL ON FUNCTION reverse_donation(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reverse_donation(bigint, text, text) TO donagate_reverse;
