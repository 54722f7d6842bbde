-- Tell every Carrel instance (LISTEN carrel_auth) about each change that can end
-- or alter what a session may do, so their in-process session views drop what
-- they hold. NOTIFY is transactional: delivered at commit, in commit order, never
-- for a rolled-back change. Payloads: 'u:<user id>' (the account and all its
-- sessions), 's:<session id>'. Any writer is covered, Carrel or not.

CREATE FUNCTION carrel_notify_user_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('carrel_auth', 'u:' || OLD.id::text);
    RETURN NULL;
END
$$;

CREATE FUNCTION carrel_notify_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('carrel_auth', 's:' || OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify_auth AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION carrel_notify_user_change();

-- Use (last_used_at) and a later expiry (refresh) take nothing away: no notice.
CREATE TRIGGER sessions_notify_auth AFTER UPDATE ON sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
          OR OLD.scope IS DISTINCT FROM NEW.scope
          OR OLD.user_id IS DISTINCT FROM NEW.user_id
          OR NEW.expires_at < OLD.expires_at)
    EXECUTE FUNCTION carrel_notify_session_change();

CREATE TRIGGER sessions_delete_notify_auth AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION carrel_notify_session_change();
