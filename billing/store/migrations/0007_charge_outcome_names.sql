-- 0007: charge.outcome allows exactly the outcomes the code stores (billing/domain/states.h).
-- 'refunded' was allowed by 0001 but never written: a refund is a reversing journal and the
-- charge row keeps the outcome the operator gave (tests/billing/store/state_names_test.cc).
-- Fails, and changes nothing, if a row holds it.
ALTER TABLE charge DROP CONSTRAINT charge_outcome_check;
ALTER TABLE charge ADD CONSTRAINT charge_outcome_check CHECK (outcome IN (
  'charged', 'insufficient_funds', 'subscriber_barred', 'rejected', 'unknown'));
