-- Reservations asked of inventory for orders not stored (yet).
--
-- orders writes a row here before it asks inventory to reserve an order's
-- stock, and deletes it in the transaction that stores the order. A row
-- still here after RESERVATION_GRACE belongs to a reservation inventory
-- may hold for an order that does not exist: its answer was lost (a
-- timeout, inventory paused, the network), or the order could not be
-- stored. The releaser asks inventory for that reservation again - the
-- same body, and inventory is idempotent on order_id - and releases it,
-- so the stock comes back in about RESERVATION_GRACE instead of at the
-- reservation's expiry.
CREATE TABLE reservation_attempts (
	order_id        uuid PRIMARY KEY,
	body            text NOT NULL,
	attempts        integer NOT NULL DEFAULT 0,
	created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
	next_attempt_at timestamptz NOT NULL
);

CREATE INDEX reservation_attempts_due ON reservation_attempts (next_attempt_at);
