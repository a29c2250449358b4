-- 0008: "replied" is proven by the reply itself (outbox.submitted_at, one reply per donation);
-- donation.replied_at restated it with one more donation row version per donation. Dropped:
-- donagatectl shows the reply's submitted_at instead. (Each fact is written once.)
ALTER TABLE donation DROP COLUMN replied_at;
