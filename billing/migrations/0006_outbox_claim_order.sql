-- 0006: the reply claim walks each operator's queue in claim order and stops after the batch.
-- outbox_work (operator, next_attempt_at) could not give (next_attempt_at, id) order for a list
-- of operators, so every claim read and sorted every ready reply: with a backlog of 250 000
-- replies (a burst the SMSC links cannot drain at once) each claim read all of them. With id
-- in the index, one ordered, LIMITed index scan per operator (Store::ClaimReplies) reads only
-- what it claims.
CREATE INDEX outbox_open ON outbox (operator, next_attempt_at, id) WHERE state IN ('pending', 'claimed');
DROP INDEX outbox_work;
