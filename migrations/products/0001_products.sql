-- The product catalogue, and the outbox its events leave through.
--
-- product_json() renders a row exactly as the API shows it, so reads can
-- hand the database's JSON straight to the client and events carry the
-- same shape. created_at uses clock_timestamp() so rows created in one
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

CREATE FUNCTION rfc3339(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

CREATE FUNCTION product_json(p products) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT json_build_object(
		'id', p.id,
		'sku', p.sku,
		'name', p.name,
		'description', p.description,
		'price_cents', p.price_cents,
		'currency', p.currency,
		'available', p.available,
		'version', p.version,
		'created_at', rfc3339(p.created_at),
		'updated_at', rfc3339(p.updated_at))
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
