"""The PostgreSQL schema: ordered migrations, numbered like SQLite's (:data:`core.sqlite_store.MIGRATIONS`).

Entry N here creates what SQLite's entry N creates, in PostgreSQL's types: ``BIGINT GENERATED ... AS
IDENTITY`` ids, ``DOUBLE PRECISION`` Unix times, ``BOOLEAN`` flags, ``BYTEA`` vectors. A feature that adds a
SQLite migration adds its entry here too. :func:`core.postgres_connection.migrate` applies them.

Differences from SQLite, on purpose:

- Sessions carry ``version`` and ``prev_version``: every change to a session's messages sets ``version``
  to a new number of the ``message_versions`` sequence, and ``prev_version`` to the one it replaced, in
  the same statement that changes the messages. A worker that caches a session's window
  (:mod:`core.recent_window`) keeps the version it read the window at, and trusts the window only while
  the database shows the same version; its own write tells it (``prev_version``) whether anybody else
  wrote since. SQLite's ``PRAGMA data_version`` has no equivalent with several servers writing.
- The message insert touches its session in the same statement (a CTE in :mod:`core.postgres_store`)
  instead of a trigger, so that the statement can return the session's new version.
- Keyword search uses a generated ``tsvector`` column (file name weight C, section A, text B) and a GIN
  index instead of FTS5.
- Vectors are ``BYTEA`` (float32, little-endian, as in SQLite) ranked in memory with NumPy: pgvector is not
  installable on the project's machines (docs/storage.md).
"""

from __future__ import annotations

PG_MIGRATIONS: list[str] = [
    # 1: sessions, messages and turns (with the per-session version of the cached windows)
    """
    CREATE SEQUENCE message_versions;
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        summary TEXT NOT NULL DEFAULT '',
        summary_upto BIGINT NOT NULL DEFAULT 0,
        summary_tokens INTEGER NOT NULL DEFAULT 0,
        trim_notified BOOLEAN NOT NULL DEFAULT FALSE,
        version BIGINT NOT NULL DEFAULT 0,
        prev_version BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE messages (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        complete BOOLEAN NOT NULL DEFAULT TRUE,
        user_id TEXT NOT NULL DEFAULT '',
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX messages_by_session ON messages (session_id, id);
    CREATE INDEX messages_by_time ON messages (created_at);
    CREATE TABLE turns (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL DEFAULT '',
        started_at DOUBLE PRECISION NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        status TEXT NOT NULL,
        model TEXT NOT NULL
    );
    CREATE INDEX turns_by_time ON turns (started_at);
    """,
    # 2: SQLite's trigger that touches a session on every message insert: done by the insert statement
    # itself here (core/postgres_store.py), so this version has nothing to create
    "",
    # 3: which bot and platform a turn belongs to (stats per bot and platform), and per-user lookups
    """
    ALTER TABLE turns ADD COLUMN bot TEXT NOT NULL DEFAULT '';
    ALTER TABLE turns ADD COLUMN platform TEXT NOT NULL DEFAULT '';
    CREATE INDEX turns_by_user ON turns (user_id, started_at);
    CREATE INDEX messages_by_user ON messages (user_id);
    """,
    # 4: replies being written on a platform, so a start after a crash can finish the half-written message
    """
    CREATE TABLE replies_in_flight (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL,
        platform TEXT NOT NULL,
        bot TEXT NOT NULL,
        user_id TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL,
        message TEXT,
        shown TEXT NOT NULL DEFAULT '',
        turn_recorded BOOLEAN NOT NULL DEFAULT FALSE,
        started_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX replies_in_flight_by_platform ON replies_in_flight (platform, bot);
    """,
    # 5: review flags (features/review); a turn's flags go with it
    """
    CREATE TABLE review_flags (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL DEFAULT '',
        bot TEXT NOT NULL DEFAULT '',
        platform TEXT NOT NULL DEFAULT '',
        turn_started_at DOUBLE PRECISION NOT NULL,
        phrase TEXT NOT NULL,
        user_text TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        resolved BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX review_flags_open ON review_flags (resolved, id);
    CREATE INDEX review_flags_by_turn ON review_flags (session_id, turn_started_at);
    CREATE INDEX review_flags_by_user ON review_flags (user_id);
    CREATE INDEX replies_in_flight_by_user ON replies_in_flight (user_id);
    CREATE FUNCTION review_flags_follow_turns() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM review_flags WHERE session_id = OLD.session_id AND turn_started_at = OLD.started_at;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER review_flags_follow_turns AFTER DELETE ON turns
        FOR EACH ROW EXECUTE FUNCTION review_flags_follow_turns();
    """,
    # 6: the knowledge base (features/knowledge): vectors as float32 bytes, keywords in a tsvector
    """
    CREATE TABLE knowledge_documents (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        bot TEXT NOT NULL,
        path TEXT NOT NULL,
        source TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        recipe TEXT NOT NULL,
        chunks INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        ingested_at DOUBLE PRECISION NOT NULL,
        UNIQUE (bot, path)
    );
    CREATE TABLE knowledge_chunks (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        document_id BIGINT NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
        bot TEXT NOT NULL,
        source TEXT NOT NULL,
        section TEXT NOT NULL,
        text TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        embedding BYTEA NOT NULL,
        words TSVECTOR GENERATED ALWAYS AS (
            setweight(to_tsvector('english', source), 'C')
            || setweight(to_tsvector('english', section), 'A')
            || setweight(to_tsvector('english', text), 'B')
        ) STORED
    );
    CREATE INDEX knowledge_chunks_by_bot ON knowledge_chunks (bot, id);
    CREATE INDEX knowledge_chunks_by_document ON knowledge_chunks (document_id);
    CREATE INDEX knowledge_chunks_words ON knowledge_chunks USING GIN (words);
    CREATE TABLE knowledge_versions (
        bot TEXT PRIMARY KEY,
        version BIGINT NOT NULL
    );
    """,
    # 7: feedback votes (adapters/feedback.py): one per voter per turn, deleted with their turn (a foreign key
    # where SQLite needs a trigger); turns are found by session and start (the reference buttons carry)
    """
    CREATE TABLE turn_votes (
        turn_id BIGINT NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        voter TEXT NOT NULL,
        vote SMALLINT NOT NULL CHECK (vote IN (-1, 1)),
        voted_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (turn_id, voter)
    );
    CREATE INDEX turns_by_session ON turns (session_id, started_at);
    """,
    # 8: tool calls and their results (issue 18), kept with the reply they led to (core/tools.py)
    """
    ALTER TABLE messages ADD COLUMN tools TEXT NOT NULL DEFAULT '';
    """,
    # 9: bots file (issue 16): each conversation's /mode and /model choice
    """
    CREATE TABLE chat_choices (
        session_id TEXT PRIMARY KEY,
        mode TEXT,
        model TEXT,
        updated_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 10 (work queue, issue 14): questions keyed by the platform's delivery id (core.store.EventQuestions)
    """
    CREATE TABLE message_events (
        event_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        question_id BIGINT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX message_events_by_time ON message_events (created_at);
    """,
]

PG_SCHEMA_VERSION = len(PG_MIGRATIONS)
