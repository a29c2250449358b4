-- 0001: core schema. Every inbound message, pending concatenated parts, donations and their
-- state history, charges (one row per idempotency key), the append-only double-entry ledger,
-- the reply outbox and receipts that arrived before their submit_sm_resp was stored.
-- docs/database.md explains every table and the invariants the database enforces.

-- Every MO as received, valid or not (invariant 4). Never updated or deleted.
CREATE TABLE inbound_message (
  id             bigserial PRIMARY KEY,
  instance_id    text        NOT NULL,
  link           text        NOT NULL,
  operator       text        NOT NULL,
  source_addr    text        NOT NULL,          -- as received
  msisdn         text,                          -- normalised 84xxxxxxxxx, NULL when invalid
  dest_addr      text        NOT NULL,
  data_coding    smallint    NOT NULL,
  esm_class      smallint    NOT NULL,
  raw_payload    bytea       NOT NULL,
  text           text        NOT NULL,          -- decoded UTF-8 ('' when undecodable)
  smsc_mo_id     text,                          -- SMSC's unique MO id (configured TLV), for dedupe
  concat_ref     integer,                       -- set for messages assembled from parts
  concat_total   smallint,
  received_at    timestamptz NOT NULL,
  stored_at      timestamptz NOT NULL DEFAULT now(),
  outcome        text        NOT NULL CHECK (outcome IN (
                   'donation', 'syntax_error', 'invalid_msisdn', 'unknown_campaign',
                   'campaign_inactive', 'daily_cap', 'blocked', 'incomplete_concat',
                   'too_many_units', 'undecodable', 'receipt', 'other')),
  outcome_detail text
);
CREATE UNIQUE INDEX inbound_message_smsc_mo_id ON inbound_message (operator, smsc_mo_id)
  WHERE smsc_mo_id IS NOT NULL;
CREATE INDEX inbound_message_received_at ON inbound_message (received_at);
CREATE INDEX inbound_message_msisdn ON inbound_message (msisdn) WHERE msisdn IS NOT NULL;

-- Parts of concatenated MOs waiting for their siblings. Kept (not deleted) when the set
-- completes or expires: consumed_by names the inbound_message that used them.
CREATE TABLE mo_part (
  id            bigserial PRIMARY KEY,
  instance_id   text        NOT NULL,
  link          text        NOT NULL,
  operator      text        NOT NULL,
  source_addr   text        NOT NULL,
  dest_addr     text        NOT NULL,
  concat_ref    integer     NOT NULL CHECK (concat_ref BETWEEN 0 AND 65535),
  ref16         boolean     NOT NULL,
  total         smallint    NOT NULL CHECK (total BETWEEN 1 AND 255),
  seq           smallint    NOT NULL CHECK (seq BETWEEN 1 AND 255),
  data_coding   smallint    NOT NULL,
  esm_class     smallint    NOT NULL,
  raw_payload   bytea       NOT NULL,
  text          text        NOT NULL,
  smsc_mo_id    text,
  received_at   timestamptz NOT NULL,
  stored_at     timestamptz NOT NULL DEFAULT now(),
  consumed_at   timestamptz,
  consumed_by   bigint REFERENCES inbound_message (id)
);
CREATE UNIQUE INDEX mo_part_smsc_mo_id ON mo_part (operator, smsc_mo_id) WHERE smsc_mo_id IS NOT NULL;
CREATE INDEX mo_part_pending ON mo_part (link, source_addr, dest_addr, concat_ref)
  WHERE consumed_at IS NULL;

CREATE TABLE donation (
  id                  bigserial PRIMARY KEY,
  inbound_message_id  bigint      NOT NULL UNIQUE REFERENCES inbound_message (id),
  campaign            text        NOT NULL,
  operator            text        NOT NULL,
  msisdn              text        NOT NULL CHECK (msisdn ~ '^84[0-9]{8,12}$'),
  shortcode           text        NOT NULL,
  units               integer     NOT NULL CHECK (units > 0),
  unit_price_vnd      bigint      NOT NULL CHECK (unit_price_vnd > 0),
  amount_vnd          bigint      NOT NULL CHECK (amount_vnd = units::bigint * unit_price_vnd),
  charging_mode       text        NOT NULL CHECK (charging_mode IN ('whole', 'per_unit')),
  daily_cap_units     integer     NOT NULL DEFAULT 0 CHECK (daily_cap_units >= 0),  -- 0 = no cap
  state               text        NOT NULL DEFAULT 'received' CHECK (state IN (
                        'received', 'charging', 'charged', 'partially_charged', 'failed',
                        'unknown', 'reversed')),
  failure_reason      text,
  charged_units       integer     NOT NULL DEFAULT 0 CHECK (charged_units BETWEEN 0 AND units),
  charged_amount_vnd  bigint      NOT NULL DEFAULT 0 CHECK (charged_amount_vnd BETWEEN 0 AND amount_vnd),
  cap_checked_at      timestamptz,                 -- daily cap evaluated (once, at first claim)
  over_daily_cap      boolean     NOT NULL DEFAULT false,
  lease_owner         text,
  lease_until         timestamptz,
  next_attempt_at     timestamptz NOT NULL DEFAULT now(),
  attempts            integer     NOT NULL DEFAULT 0,
  received_at         timestamptz NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  final_at            timestamptz,
  replied_at          timestamptz,
  reversal_journal_id bigint
);
-- The work queue: only unfinished donations are indexed, so the index stays small.
CREATE INDEX donation_work ON donation (next_attempt_at, id)
  WHERE state IN ('received', 'charging', 'unknown');
CREATE INDEX donation_msisdn_campaign ON donation (msisdn, campaign, received_at);
CREATE INDEX donation_received_at ON donation (received_at);

-- Append-only history of donation states.
CREATE TABLE donation_transition (
  id           bigserial PRIMARY KEY,
  donation_id  bigint      NOT NULL REFERENCES donation (id),
  from_state   text,
  to_state     text        NOT NULL,
  reason       text,
  actor        text        NOT NULL,             -- instance id or finance user
  at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX donation_transition_donation ON donation_transition (donation_id);

-- One row per idempotency key: never two rows for one key.
CREATE TABLE charge (
  key                text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 30),
  donation_id        bigint      NOT NULL REFERENCES donation (id),
  unit_index         integer     NOT NULL DEFAULT 0 CHECK (unit_index >= 0),  -- 0 = whole
  units              integer     NOT NULL CHECK (units > 0),
  amount_vnd         bigint      NOT NULL CHECK (amount_vnd > 0),
  outcome            text        NOT NULL CHECK (outcome IN (
                       'charged', 'insufficient_funds', 'subscriber_barred', 'rejected',
                       'unknown', 'refunded')),
  operator_reference text,
  detail             text,
  attempts           integer     NOT NULL DEFAULT 1,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  resolved_at        timestamptz,
  UNIQUE (donation_id, unit_index)
);
CREATE INDEX charge_unknown ON charge (donation_id) WHERE outcome = 'unknown';

CREATE SEQUENCE ledger_journal_id_seq;

-- Double-entry ledger. amount_vnd is always positive; direction says which side.
-- A journal (journal_id) balances: sum(debit) = sum(credit), checked at commit.
CREATE TABLE ledger_entry (
  id                  bigserial   PRIMARY KEY,
  journal_id          bigint      NOT NULL,
  account             text        NOT NULL CHECK (account ~ '^(receivable|fund):.+$'),
  direction           text        NOT NULL CHECK (direction IN ('debit', 'credit')),
  amount_vnd          bigint      NOT NULL CHECK (amount_vnd > 0),
  donation_id         bigint      REFERENCES donation (id),
  charge_key          text        REFERENCES charge (key),
  reverses_journal_id bigint,
  memo                text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  created_by          text        NOT NULL,
  db_user             text        NOT NULL DEFAULT session_user
);
CREATE INDEX ledger_entry_journal ON ledger_entry (journal_id);
CREATE INDEX ledger_entry_donation ON ledger_entry (donation_id);
CREATE INDEX ledger_entry_created_at ON ledger_entry (created_at);
-- One journal per charge (replaying an outcome can never book it twice) ...
CREATE UNIQUE INDEX ledger_entry_one_journal_per_charge ON ledger_entry (charge_key, direction)
  WHERE reverses_journal_id IS NULL AND charge_key IS NOT NULL;
-- ... and one reversal per original journal.
CREATE UNIQUE INDEX ledger_entry_one_reversal ON ledger_entry (reverses_journal_id, direction)
  WHERE reverses_journal_id IS NOT NULL;

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE OR DELETE ON ledger_entry
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entry_no_truncate BEFORE TRUNCATE ON ledger_entry
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER donation_transition_no_update BEFORE UPDATE OR DELETE ON donation_transition
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER donation_transition_no_truncate BEFORE TRUNCATE ON donation_transition
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Balance check at COMMIT (deferred), so a journal may be written by several statements of
-- one transaction but can never be committed unbalanced. SECURITY DEFINER: the check reads
-- the journal even when the inserting role may not read the ledger (reverse_donation callers).
CREATE FUNCTION ledger_check_journal_balance() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  debits  numeric;
  credits numeric;
BEGIN
  SELECT coalesce(sum(amount_vnd) FILTER (WHERE direction = 'debit'), 0),
         coalesce(sum(amount_vnd) FILTER (WHERE direction = 'credit'), 0)
    INTO debits, credits
    FROM ledger_entry WHERE journal_id = NEW.journal_id;
  IF debits <> credits THEN
    RAISE EXCEPTION 'ledger journal % is unbalanced: debits % <> credits %',
      NEW.journal_id, debits, credits USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON ledger_entry
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION ledger_check_journal_balance();

-- Replies to send (thank-you, partial, insufficient, help, ...): the persisted outbox.
CREATE TABLE outbox (
  id                 bigserial   PRIMARY KEY,
  donation_id        bigint      REFERENCES donation (id),
  inbound_message_id bigint      REFERENCES inbound_message (id),
  purpose            text        NOT NULL,      -- success, partial, insufficient, syntax, ...
  operator           text        NOT NULL,
  link               text,                      -- NULL: any bound link of the operator
  source_addr        text        NOT NULL,      -- the campaign shortcode
  dest_addr          text        NOT NULL,      -- the subscriber
  text               text        NOT NULL,
  state              text        NOT NULL DEFAULT 'pending' CHECK (state IN (
                       'pending', 'claimed', 'submitted', 'delivered', 'undeliverable',
                       'expired', 'rejected', 'failed')),
  attempts           integer     NOT NULL DEFAULT 0,
  next_attempt_at    timestamptz NOT NULL DEFAULT now(),
  lease_owner        text,
  lease_until        timestamptz,
  last_error         text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  submitted_at       timestamptz,
  receipt_stat       text,
  receipt_err        text,
  receipt_at         timestamptz
);
-- At most one reply per donation, and one per inbound message that is not a donation, so
-- replaying a commit can never queue two replies.
CREATE UNIQUE INDEX outbox_one_per_donation ON outbox (donation_id) WHERE donation_id IS NOT NULL;
CREATE UNIQUE INDEX outbox_one_per_message ON outbox (inbound_message_id)
  WHERE donation_id IS NULL AND inbound_message_id IS NOT NULL;
CREATE INDEX outbox_work ON outbox (operator, next_attempt_at) WHERE state IN ('pending', 'claimed');

-- SMSC message ids of a submitted reply (one per submit_sm part), normalised by the link.
CREATE TABLE outbox_message_id (
  outbox_id       bigint NOT NULL REFERENCES outbox (id),
  operator        text   NOT NULL,
  smsc_message_id text   NOT NULL,
  part            smallint NOT NULL DEFAULT 1,
  PRIMARY KEY (outbox_id, part)
);
CREATE INDEX outbox_message_id_lookup ON outbox_message_id (operator, smsc_message_id);

-- Receipts whose message id is not known yet (the receipt overtook the submit_sm_resp, or
-- the instance committed the id later). Applied and deleted by MarkReplySubmitted.
CREATE TABLE pending_receipt (
  id                 bigserial   PRIMARY KEY,
  operator           text        NOT NULL,
  smsc_message_id    text        NOT NULL,
  stat               text        NOT NULL,
  err                text,
  done_at            timestamptz,
  inbound_message_id bigint REFERENCES inbound_message (id),
  received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_receipt_lookup ON pending_receipt (operator, smsc_message_id);

-- Applies one delivery receipt to the reply that carries `p_message_id`, or parks it in
-- pending_receipt. Returns true when a reply was found. A failure stat is never overwritten
-- by a later DELIVRD of another part.
CREATE FUNCTION apply_receipt(p_operator text, p_message_id text, p_stat text, p_err text,
                              p_done_at timestamptz, p_inbound_message_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  target bigint;
  new_state text;
BEGIN
  SELECT m.outbox_id INTO target FROM outbox_message_id m
   WHERE m.operator = p_operator AND m.smsc_message_id = p_message_id
   ORDER BY m.outbox_id DESC LIMIT 1;
  IF target IS NULL THEN
    INSERT INTO pending_receipt (operator, smsc_message_id, stat, err, done_at, inbound_message_id)
    VALUES (p_operator, p_message_id, p_stat, p_err, p_done_at, p_inbound_message_id);
    RETURN false;
  END IF;
  new_state := CASE upper(p_stat)
                 WHEN 'DELIVRD' THEN 'delivered'
                 WHEN 'UNDELIV' THEN 'undeliverable'
                 WHEN 'EXPIRED' THEN 'expired'
                 WHEN 'REJECTD' THEN 'rejected'
                 WHEN 'DELETED' THEN 'failed'
                 ELSE NULL END;  -- ACCEPTD, ENROUTE, UNKNOWN: intermediate, keep state
  UPDATE outbox o
     SET receipt_stat = p_stat, receipt_err = p_err, receipt_at = coalesce(p_done_at, now()),
         state = CASE
                   WHEN new_state IS NULL THEN o.state
                   WHEN o.state IN ('undeliverable', 'expired', 'rejected', 'failed') THEN o.state
                   ELSE new_state END,
         updated_at = now()
   WHERE o.id = target;
  RETURN true;
END $$;
