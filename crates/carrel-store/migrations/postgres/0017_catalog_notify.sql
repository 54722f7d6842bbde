-- Tell every Carrel instance (LISTEN carrel_auth, the channel of 0012) that the
-- catalog changed, so their in-process views of rendered list pages start over.
-- A page shows items and their copies' availability, so any change to either
-- table counts. One notification per statement (not per row); NOTIFY folds
-- identical payloads of one transaction into one, delivered at commit, never for
-- a rolled-back change. Payload: 'c'. Any writer is covered, Carrel or not.

CREATE FUNCTION carrel_notify_catalog_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('carrel_auth', 'c');
    RETURN NULL;
END
$$;

CREATE TRIGGER items_notify_catalog AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON items
    FOR EACH STATEMENT EXECUTE FUNCTION carrel_notify_catalog_change();

CREATE TRIGGER copies_notify_catalog AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON copies
    FOR EACH STATEMENT EXECUTE FUNCTION carrel_notify_catalog_change();
