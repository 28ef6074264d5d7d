-- Wakes the outbox relay when events are written: one payload-less
-- NOTIFY outbox per statement (notifications in one transaction fold into
-- one, and a payload would only add to the commit-time lock). A wake-up
-- only: the relay reads the table itself and still polls as a fallback.

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NOTIFY outbox;
	RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
	FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
