-- The append-only audit log. Actor and subject are plain ids (no foreign keys) so
-- events outlive the rows they describe.
CREATE TABLE audit_events (
    id          UUID PRIMARY KEY,
    event_type  TEXT NOT NULL,
    actor_id    UUID,
    subject_id  UUID,
    ip_address  TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    at          TIMESTAMPTZ NOT NULL,
    details     JSONB NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_actor ON audit_events (actor_id, at);
CREATE INDEX audit_events_subject ON audit_events (subject_id, at);
CREATE INDEX audit_events_type ON audit_events (event_type, at);
