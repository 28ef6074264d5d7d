-- Stock per product, reservations against it, and the outbox its events
-- leave through.
--
-- The invariant 0 <= reserved <= on_hand is enforced here, by the database
-- itself, whatever the code above it does: an update that would break it
-- fails instead of overselling.

CREATE FUNCTION rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE TABLE stock (
	product_id uuid PRIMARY KEY,
	on_hand    integer NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
	reserved   integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
	version    integer NOT NULL DEFAULT 1,
	updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand)
);

CREATE TABLE reservations (
	id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	order_id   uuid NOT NULL CONSTRAINT reservations_order_key UNIQUE,
	status     text NOT NULL DEFAULT 'pending'
	           CHECK (status IN ('pending', 'confirmed', 'released')),
	reason     text,
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX reservations_expiring ON reservations (expires_at)
	WHERE status = 'pending';

CREATE TABLE reservation_items (
	reservation_id uuid NOT NULL REFERENCES reservations ON DELETE CASCADE,
	product_id     uuid NOT NULL,
	quantity       integer NOT NULL CHECK (quantity > 0),
	PRIMARY KEY (reservation_id, product_id)
);

CREATE TABLE outbox (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	seq          bigint GENERATED ALWAYS AS IDENTITY,
	event_type   text NOT NULL,
	aggregate_id uuid NOT NULL,
	data         jsonb NOT NULL,
	request_id   text,
	traceparent  text,
	created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
	sent_at      timestamptz
);

CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
