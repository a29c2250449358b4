-- 0003: ingest batch markers. IngestBatch writes one row per committed batch, in the same
-- transaction, holding the per-item results. When the connection is lost while the COMMIT is
-- in flight (outcome unknown), the store reconnects, waits for the old server process to be
-- gone and looks the token up: found means committed (the MOs may be acked, no duplicate
-- donation when the SMSC would otherwise redeliver them), absent means rolled back. Rows are
-- only needed for seconds; the store prunes those older than an hour.
CREATE TABLE ingest_batch (
  token        text        PRIMARY KEY,
  instance_id  text        NOT NULL,
  -- per item, in item order: duplicate (0/1), inbound_message_id, donation_id, part_id, reply_id
  results      bigint[]    NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_batch_committed_at ON ingest_batch (committed_at);
GRANT SELECT, INSERT, DELETE ON ingest_batch TO donagate_daemon;
