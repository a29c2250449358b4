-- 0011: the finance console (console/, donagate-console): its users, sessions, audit log,
-- four-eyes reversal requests, saved reconcile runs and settlement mappings.
--
--   donagate_console  the console's actions: manage its users and sessions, append to the
--                     audit log, file and decide reversal requests, save reconcile runs and
--                     mappings. Reads go through donagate_finance (read-only); reversals
--                     through reverse_donation() (donagate_reverse). The console's login role
--                     is granted all three and switches role per request (docs/finance.md).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'donagate_console') THEN
    BEGIN
      CREATE ROLE donagate_console NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- created concurrently by a migration of another database
    END;
  END IF;
END $$;
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO donagate_console', current_database());
END $$;
GRANT USAGE ON SCHEMA public TO donagate_console;

-- Users: a name, an Argon2id hash (libsodium's crypto_pwhash_str encoding, "$argon2id$..."),
-- roles out of four, and a disabled flag (users are never deleted: the audit log names them).
CREATE TABLE console_user (
  id            bigserial   PRIMARY KEY,
  name          text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
  roles         text[]      NOT NULL CHECK (roles <@ ARRAY['finance', 'approver', 'ops', 'admin']::text[]),
  disabled      boolean     NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Sessions: only the SHA-256 of the cookie's token is stored (a database reader cannot log in
-- with what it reads). A disabled user's sessions stop working at once (the join checks it).
CREATE TABLE console_session (
  token_sha256  bytea       PRIMARY KEY CHECK (length(token_sha256) = 32),
  user_id       bigint      NOT NULL REFERENCES console_user (id),
  csrf_token    text        NOT NULL CHECK (length(csrf_token) >= 32),
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  remote_addr   text        NOT NULL
);
CREATE INDEX console_session_user ON console_session (user_id);

-- Audit: who, when, what, from where, and how it ended. Append-only, enforced like the ledger.
CREATE TABLE console_audit (
  id           bigserial   PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor        text        NOT NULL,            -- user name, or the name tried at a failed login
  action       text        NOT NULL,            -- login, logout, export, reversal_request, ...
  detail       text        NOT NULL DEFAULT '',
  remote_addr  text        NOT NULL,
  outcome      text        NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed'))
);
CREATE INDEX console_audit_at ON console_audit (at);
CREATE TRIGGER console_audit_no_update BEFORE UPDATE OR DELETE ON console_audit
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER console_audit_no_truncate BEFORE TRUNCATE ON console_audit
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Reversal requests: filed by a finance user with a reason, decided by a different user (the
-- four eyes are a constraint, not only a check in the console). `done` carries the journal
-- reverse_donation() wrote.
CREATE TABLE reversal_request (
  id            bigserial   PRIMARY KEY,
  donation_id   bigint      NOT NULL REFERENCES donation (id),
  reason        text        NOT NULL CHECK (btrim(reason) <> ''),
  requested_by  text        NOT NULL,
  requested_at  timestamptz NOT NULL DEFAULT now(),
  state         text        NOT NULL DEFAULT 'requested'
                            CHECK (state IN ('requested', 'rejected', 'done', 'refused')),
  decided_by    text,
  decided_at    timestamptz,
  decision_note text,
  journal_id    bigint,
  amount_vnd    bigint,
  CHECK (decided_by IS NULL OR decided_by <> requested_by),
  CHECK ((state = 'requested') = (decided_by IS NULL)),
  CHECK (state <> 'done' OR journal_id IS NOT NULL)
);
-- At most one open request per donation.
CREATE UNIQUE INDEX reversal_request_one_open ON reversal_request (donation_id) WHERE state = 'requested';

-- Saved settlement mappings (the same TOML donagatectl reads with --mapping).
CREATE TABLE settlement_mapping (
  name        text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$'),
  toml        text        NOT NULL,
  created_by  text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Reconcile runs: inputs (file name, its SHA-256, the mapping text and its SHA-256) and the
-- results (totals as JSON, discrepancy CSV) so a month-end run can be reopened for an auditor.
-- Append-only too.
CREATE TABLE reconcile_run (
  id                bigserial   PRIMARY KEY,
  run_at            timestamptz NOT NULL DEFAULT now(),
  run_by            text        NOT NULL,
  operator          text        NOT NULL,
  day               date        NOT NULL,
  settlement_name   text        NOT NULL,
  settlement_sha256 text        NOT NULL CHECK (settlement_sha256 ~ '^[0-9a-f]{64}$'),
  settlement_bytes  bigint      NOT NULL,
  mapping_toml      text        NOT NULL,
  mapping_sha256    text        NOT NULL CHECK (mapping_sha256 ~ '^[0-9a-f]{64}$'),
  totals            jsonb       NOT NULL,
  discrepancies_csv text        NOT NULL
);
CREATE TRIGGER reconcile_run_no_update BEFORE UPDATE OR DELETE ON reconcile_run
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER reconcile_run_no_truncate BEFORE TRUNCATE ON reconcile_run
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

GRANT SELECT ON console_user, console_session, console_audit, reversal_request, settlement_mapping,
  reconcile_run TO donagate_console;
GRANT INSERT, UPDATE ON console_user TO donagate_console;
GRANT INSERT, DELETE ON console_session TO donagate_console;
GRANT INSERT ON console_audit, reconcile_run, settlement_mapping TO donagate_console;
GRANT UPDATE ON settlement_mapping TO donagate_console;
GRANT INSERT, UPDATE ON reversal_request TO donagate_console;
GRANT USAGE ON SEQUENCE console_user_id_seq, console_audit_id_seq, reversal_request_id_seq,
  reconcile_run_id_seq TO donagate_console;
-- The reversal request's donation must be readable to check it; the console reads finance
-- data through donagate_finance, which already has SELECT on everything.
GRANT SELECT ON donation TO donagate_console;
-- Finance (read-only) sees users without their password hashes, and never the sessions.
REVOKE SELECT ON console_session FROM donagate_finance;
REVOKE SELECT (password_hash) ON console_user FROM donagate_finance;
REVOKE SELECT ON console_user FROM donagate_finance;
GRANT SELECT (id, name, roles, disabled, created_at, updated_at) ON console_user TO donagate_finance;
REVOKE UPDATE, DELETE, TRUNCATE ON console_audit, reconcile_run FROM donagate_console, donagate_finance;
