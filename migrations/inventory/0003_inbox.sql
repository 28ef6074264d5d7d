-- The inbox: ids of the events this service has consumed, written in the
-- same transaction as their effect, so a redelivered event is a no-op.
CREATE TABLE inbox (
	event_id     uuid PRIMARY KEY,
	event_type   text NOT NULL,
	processed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
