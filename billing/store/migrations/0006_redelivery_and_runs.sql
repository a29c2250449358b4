-- 0006: recognising an SMSC's redelivery of an MO we committed but may not have acknowledged
-- (docs/pipeline.md "In-doubt MOs and redeliveries"), and the runs of each instance.
--
-- An SMSC that sends no MO-id TLV redelivers a deliver_sm it did not see answered ESME_ROK as a
-- new PDU with the same content. The daemon matches such a redelivery to the stored MO and
-- records it as its own row with outcome 'redelivery' and redelivery_of = the original: acked,
-- never a second donation. The partial index serves "has this original absorbed a later
-- redelivery already?" at start-up; it holds only redelivery rows.
ALTER TABLE inbound_message DROP CONSTRAINT inbound_message_outcome_check;
ALTER TABLE inbound_message ADD CONSTRAINT inbound_message_outcome_check CHECK (outcome IN (
  'donation', 'syntax_error', 'invalid_msisdn', 'unknown_campaign', 'campaign_inactive',
  'daily_cap', 'blocked', 'incomplete_concat', 'too_many_units', 'undecodable', 'receipt',
  'other', 'redelivery'));
ALTER TABLE inbound_message ADD COLUMN redelivery_of bigint REFERENCES inbound_message (id);
ALTER TABLE inbound_message ADD CONSTRAINT inbound_message_redelivery_has_original
  CHECK ((outcome = 'redelivery') = (redelivery_of IS NOT NULL));
CREATE INDEX inbound_message_redelivery_of ON inbound_message (redelivery_of)
  WHERE redelivery_of IS NOT NULL;
-- (Start-up reads this instance's MOs received in the seconds before an unclean stop through
-- the existing received_at index; no index per instance is added to the ingest path.)

-- One row per daemon run. started_at at start; last_alive_at is the health loop's write probe
-- (a tiny transaction every few hundred ms, which also tells /readyz that the database takes
-- writes); stopped_at only after a clean stop, i.e. after every committed MO was answered.
-- A run without stopped_at ended by a crash: its MOs received from (last_alive_at − the
-- ack-in-flight horizon) on may have been committed without their deliver_sm_resp reaching
-- the SMSC. This is operational state, not money: its rows are updated.
CREATE TABLE instance_run (
  id            bigserial   PRIMARY KEY,
  instance_id   text        NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  last_alive_at timestamptz NOT NULL DEFAULT now(),
  stopped_at    timestamptz
);
CREATE INDEX instance_run_instance ON instance_run (instance_id, id);
GRANT SELECT, INSERT, UPDATE ON instance_run TO donagate_daemon;
GRANT USAGE ON SEQUENCE instance_run_id_seq TO donagate_daemon;
