-- Schema version 2: several deliveries per consumer, at most one unsettled
-- per ordering key (the event's subject), and transient retries that do not
-- count as attempts.
--   subject: the event's ordering key; an event is handed out only while no
--            unsettled delivery of the consumer has the same subject.
--   held:    1 while the delivery waits for a transient retry (`retry`):
--            handing it out again does not count an attempt, and its lease
--            ending is not a failure.
--   retries: transient retries so far (picks the backoff).
--   done:    1 once settled (acknowledged or dead-lettered) while an earlier
--            event is not yet, so `consumers.position` cannot pass it; such
--            rows are removed when the position moves past them.
ALTER TABLE deliveries ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN done INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries
   SET subject = coalesce((SELECT e.subject FROM events e WHERE e.seq = deliveries.seq), '');
CREATE INDEX IF NOT EXISTS deliveries_unsettled ON deliveries (consumer, subject) WHERE done = 0;

PRAGMA user_version = 2;
