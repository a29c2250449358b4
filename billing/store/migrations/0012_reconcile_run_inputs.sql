-- 0012: what the console's Reconcile page records beyond 0011's reconcile_run, so a reopened
-- month-end run tells an auditor everything it was run with and can prove its download:
--   mapping_name          the saved mapping chosen ('' when built in the form for this run)
--   settlement_encoding   as detected: 'UTF-8' or 'UTF-8 with BOM'
--   settlement_rows       data rows read from the file (all of them, every day)
--   discrepancies_sha256  SHA-256 of discrepancies_csv: the downloaded file hashes to it
-- reconcile_run stays append-only (0011's triggers); settlement_mapping keeps who changed it.
ALTER TABLE reconcile_run
  ADD COLUMN mapping_name         text   NOT NULL DEFAULT '',
  ADD COLUMN settlement_encoding  text   NOT NULL DEFAULT 'UTF-8',
  ADD COLUMN settlement_rows      bigint NOT NULL DEFAULT 0,
  ADD COLUMN discrepancies_sha256 text   NOT NULL DEFAULT ''
    CHECK (discrepancies_sha256 = '' OR discrepancies_sha256 ~ '^[0-9a-f]{64}$');
CREATE INDEX reconcile_run_day ON reconcile_run (day, operator);
ALTER TABLE settlement_mapping ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
