-- Orders and their items, the releases still owed to inventory, and the
-- outbox the order events leave through.
--
-- Prices are copied into order_items when the order is placed: an order
-- keeps the price it was sold at whatever the catalogue does later.

CREATE FUNCTION rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE TABLE orders (
	id              uuid PRIMARY KEY,
	customer_id     uuid NOT NULL,
	status          text NOT NULL DEFAULT 'pending'
	                CHECK (status IN ('pending', 'confirmed', 'rejected',
	                                  'cancelled')),
	total_cents     bigint NOT NULL CHECK (total_cents >= 0),
	currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	reservation_id  uuid NOT NULL,
	idempotency_key text CONSTRAINT orders_idempotency_key UNIQUE,
	request_hash    text,
	created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
	updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX orders_by_customer ON orders (customer_id, created_at, id);

CREATE TABLE order_items (
	order_id         uuid NOT NULL REFERENCES orders ON DELETE CASCADE,
	product_id       uuid NOT NULL,
	quantity         integer NOT NULL CHECK (quantity > 0),
	unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
	line_total_cents bigint NOT NULL CHECK (line_total_cents >= 0),
	PRIMARY KEY (order_id, product_id)
);

-- A cancelled order's reservation to release at inventory; retried until
-- inventory answers, so cancelling works while inventory is down.
CREATE TABLE pending_releases (
	reservation_id  uuid PRIMARY KEY,
	order_id        uuid NOT NULL,
	attempts        integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp()
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
