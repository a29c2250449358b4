-- 0010: keyword flows (HELP, STOP, STOP ALL, confirmation of large amounts, status query) and
-- reply safety (docs/pipeline.md "Keywords" and "Reply safety").
--
-- The decisions are made by billing/domain (keywords.h) and the pipeline; these rows persist
-- them. Nothing here is on the ingest path of an ordinary "CV n".

-- MO outcomes of the keyword flows and of reply safety.
ALTER TABLE inbound_message DROP CONSTRAINT inbound_message_outcome_check;
ALTER TABLE inbound_message ADD CONSTRAINT inbound_message_outcome_check CHECK (outcome IN (
  'donation', 'syntax_error', 'invalid_msisdn', 'unknown_campaign', 'campaign_inactive',
  'daily_cap', 'blocked', 'incomplete_concat', 'too_many_units', 'undecodable', 'receipt',
  'other', 'redelivery', 'help', 'stop', 'confirm', 'status', 'rate_limited', 'reply_loop'));

-- A donation above the campaign's confirm_above_units waits in awaiting_confirmation until a
-- confirming MO from the same number to the same shortcode arrives before confirm_deadline.
-- Its next_attempt_at is the deadline, so the open-work index and the claim horizon do not
-- see it before then (the claim takes only received/charging/unknown anyway).
ALTER TABLE donation DROP CONSTRAINT donation_state_check;
ALTER TABLE donation ADD CONSTRAINT donation_state_check CHECK (state IN (
  'received', 'charging', 'charged', 'partially_charged', 'failed', 'unknown', 'reversed',
  'awaiting_confirmation'));
ALTER TABLE donation ADD COLUMN confirm_deadline timestamptz;
ALTER TABLE donation ADD COLUMN confirmed_by bigint REFERENCES inbound_message (id);
-- The confirmation lookup (msisdn, shortcode) and the expiry sweep: only waiting rows.
CREATE INDEX donation_awaiting_confirmation ON donation (msisdn, shortcode, id)
  WHERE state = 'awaiting_confirmation';

-- Opt-outs: one row per STOP (per campaign it applies to). Append-only, the history is the
-- record: a number is opted out of a campaign when its latest opt-out there is later than its
-- latest donation there (a new "CV n" after STOP is an explicit donation and re-subscribes).
CREATE TABLE opt_out (
  id                 bigserial   PRIMARY KEY,
  msisdn             text        NOT NULL CHECK (msisdn ~ '^84[0-9]{8,12}$'),
  campaign           text        NOT NULL,
  all_campaigns      boolean     NOT NULL DEFAULT false,  -- from STOP ALL
  inbound_message_id bigint      NOT NULL REFERENCES inbound_message (id),
  opted_out_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (inbound_message_id, campaign)
);
CREATE INDEX opt_out_msisdn ON opt_out (msisdn, campaign, opted_out_at);

-- The daemon records opt-outs (never updates or deletes them); finance reads them through the
-- default privileges of 0002.
GRANT SELECT, INSERT ON opt_out TO donagate_daemon;
GRANT USAGE ON SEQUENCE opt_out_id_seq TO donagate_daemon;
