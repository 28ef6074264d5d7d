-- The product catalogue, and the outbox its events leave through.
--
-- The service renders rows as JSON in its statements (see products.c),
-- so reads hand the database's text straight to the client and events
-- carry the same shape. created_at uses clock_timestamp() so rows created in one
-- transaction still order strictly for keyset pagination.

CREATE TABLE products (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	sku         text NOT NULL CONSTRAINT products_sku_key UNIQUE,
	name        text NOT NULL,
	description text,
	price_cents bigint NOT NULL CHECK (price_cents >= 0),
	currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	available   boolean NOT NULL DEFAULT false,
	version     integer NOT NULL DEFAULT 1,
	created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
	updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX products_keyset ON products (created_at, id);

-- RFC 3339 in UTC with microseconds. STABLE (to_char is) and a single
-- expression, so the planner inlines it into the statements that use it.
CREATE FUNCTION rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Events written in the same transaction as the change; a relay publishes
-- them and sets sent_at once the broker confirmed.
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
