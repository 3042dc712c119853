"""Schema and forward-only migrations, applied under an advisory lock on every start."""

from __future__ import annotations

import asyncpg

from ytingest.errors import ConfigError

_LOCK_KEY = 0x79746967  # "ytig"
# a URL with userinfo, and the same URL without it (as ``sourcetext.public_url`` cuts it)
_USERINFO = "^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@"
_PUBLIC = "regexp_replace({}, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\\1')"

# Each entry runs once, in order, inside one transaction. Never edit a released entry: append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE channels (
        url        text PRIMARY KEY,
        first_seen timestamptz NOT NULL DEFAULT now(),
        last_run   timestamptz
    );
    CREATE TABLE videos (
        id            text PRIMARY KEY,
        channel       text REFERENCES channels(url),
        title         text NOT NULL DEFAULT '',
        url           text NOT NULL,
        webpage_url   text NOT NULL DEFAULT '',
        duration      real,
        status        text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'done', 'failed')),
        error         text,
        error_stage   text,
        attempts      integer NOT NULL DEFAULT 0,
        segments      integer,
        audio_seconds real,
        asr_model     text,
        embed_model   text,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now(),
        done_at       timestamptz
    );
    CREATE INDEX videos_status ON videos (status);
    CREATE TABLE segments (
        video_id      text NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
        idx           integer NOT NULL,
        start_s       real NOT NULL,
        end_s         real NOT NULL,
        text          text NOT NULL,
        speaker       text,
        speaker_score real,
        avg_logprob   real,
        embedding     vector({dim}) NOT NULL,
        embed_model   text NOT NULL,
        tsv           tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
        PRIMARY KEY (video_id, idx)
    );
    CREATE INDEX segments_embedding_hnsw ON segments USING hnsw (embedding vector_cosine_ops);
    CREATE INDEX segments_tsv ON segments USING gin (tsv);
    CREATE INDEX segments_speaker ON segments (speaker) WHERE speaker IS NOT NULL;
    """,
    # 2: speaker identification. Voiceprints of enrolled speakers (files: clip path -> SHA-256, so
    # an unchanged voices/ folder is not re-embedded) and anonymous voices kept across videos.
    """
    CREATE TABLE voiceprints (
        name       text PRIMARY KEY,
        embedding  vector NOT NULL,
        model      text NOT NULL,
        files      jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE unknown_speakers (
        label      text PRIMARY KEY,
        embedding  vector NOT NULL,
        model      text NOT NULL,
        weight     real NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    """
    ALTER TABLE videos ADD COLUMN permanent boolean NOT NULL DEFAULT false;
    """,
    # 4: the HNSW index is built after a run has stored its rows (Database.ensure_search_index):
    # a bulk build, instead of one graph insert per row on the store path (40x slower).
    # The tsvector column and its GIN index go: nothing queries them, and they cost a quarter of
    # the store time.
    """
    DROP INDEX IF EXISTS segments_embedding_hnsw;
    DROP INDEX IF EXISTS segments_tsv;
    ALTER TABLE segments DROP COLUMN IF EXISTS tsv;
    """,
    # 5: search filters. The upload date from the listing (NULL where the source gives none), and
    # videos by channel. The full-text index is an expression index over ``text``, built after a
    # load like the HNSW index (Database.ensure_search_index): nothing extra on the COPY path.
    """
    ALTER TABLE videos ADD COLUMN upload_date date;
    CREATE INDEX videos_channel ON videos (channel);
    """,
    # 6: the uploader's channel as the site names it (from the download's metadata)
    """
    ALTER TABLE videos ADD COLUMN channel_name text, ADD COLUMN channel_id text;
    """,
    # 7: upcoming premieres and live-now streams, recorded at discovery and taken up by a later
    # run once the listing shows them as ordinary videos (Ledger.register_video)
    """
    ALTER TABLE videos DROP CONSTRAINT videos_status_check;
    ALTER TABLE videos ADD CONSTRAINT videos_status_check
        CHECK (status IN ('pending', 'done', 'failed', 'upcoming', 'live'));
    """,
    # 8: what the ASR said of each stored video: its language, the detection's probability (NULL:
    # the language was set, not detected), and a warning when it was stored with something missing
    """
    ALTER TABLE videos ADD COLUMN language text, ADD COLUMN language_probability real,
        ADD COLUMN warning text;
    """,
    # 9: anonymous voices per channel (labelled at store time, under a per-channel lock), with the
    # old global ones copied into each channel whose segments carry their label; each channel's
    # highest unknown-N so far (the next label without reading its segments: that took 1.4 s per
    # store for a 1000-video channel); overlapped speech on segments; and where an enrolled voice
    # came from ('folder': voices/, 'named': `speakers name`).
    """
    ALTER TABLE unknown_speakers ADD COLUMN channel text NOT NULL DEFAULT '';
    ALTER TABLE unknown_speakers DROP CONSTRAINT unknown_speakers_pkey;
    ALTER TABLE unknown_speakers ADD PRIMARY KEY (model, channel, label);
    INSERT INTO unknown_speakers (label, embedding, model, weight, updated_at, channel)
        SELECT u.label, u.embedding, u.model, u.weight, u.updated_at, h.channel
        FROM unknown_speakers u JOIN (
            SELECT DISTINCT s.speaker, v.channel FROM segments s JOIN videos v ON v.id = s.video_id
            WHERE s.speaker LIKE 'unknown-%' AND coalesce(v.channel, '') <> ''
        ) AS h ON h.speaker = u.label;
    DELETE FROM unknown_speakers u WHERE u.channel = ''
        AND EXISTS (SELECT 1 FROM unknown_speakers c WHERE c.label = u.label AND c.channel <> '')
        AND NOT EXISTS (SELECT 1 FROM segments s JOIN videos v ON v.id = s.video_id
                        WHERE s.speaker = u.label AND coalesce(v.channel, '') = '');
    CREATE TABLE unknown_numbers (channel text PRIMARY KEY, last bigint NOT NULL);
    INSERT INTO unknown_numbers (channel, last)
        SELECT channel, max(n) FROM (
            SELECT channel, substring(label FROM '^unknown-([0-9]+)$')::bigint AS n FROM unknown_speakers
            UNION ALL
            SELECT coalesce(v.channel, ''), substring(s.speaker FROM '^unknown-([0-9]+)$')::bigint
            FROM segments s JOIN videos v ON v.id = s.video_id WHERE s.speaker LIKE 'unknown-%'
        ) AS l(channel, n) WHERE n IS NOT NULL GROUP BY channel;
    ALTER TABLE segments ADD COLUMN overlap boolean NOT NULL DEFAULT false;
    ALTER TABLE voiceprints ADD COLUMN source text NOT NULL DEFAULT 'folder'
        CHECK (source IN ('folder', 'named'));
    """,
    # 10: the cluster. Each worker's heartbeat row (``ytingest workers``); every claim of a video by a
    # worker and how it ended (a claim still open when the video is claimed again: its worker died);
    # and the one row of the global download pace and pause that every worker's downloads obey.
    """
    CREATE TABLE workers (
        name          text PRIMARY KEY,
        host          text NOT NULL,
        pid           integer NOT NULL,
        gpu           text,
        state         text NOT NULL DEFAULT 'running',
        started_at    timestamptz NOT NULL DEFAULT now(),
        seen_at       timestamptz NOT NULL DEFAULT now(),
        in_flight     integer NOT NULL DEFAULT 0,
        done          integer NOT NULL DEFAULT 0,
        failed        integer NOT NULL DEFAULT 0
    );
    CREATE TABLE claims (
        id         bigserial PRIMARY KEY,
        video_id   text NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
        worker     text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        ended_at   timestamptz,
        outcome    text CHECK (outcome IN ('stored', 'failed', 'waiting', 'released', 'died'))
    );
    CREATE INDEX claims_video ON claims (video_id);
    CREATE INDEX videos_done_at ON videos (done_at);
    CREATE TABLE download_gate (
        id           boolean PRIMARY KEY DEFAULT true CHECK (id),
        next_start   timestamptz NOT NULL DEFAULT now(),
        paused_until timestamptz NOT NULL DEFAULT now(),
        pause_reason text
    );
    INSERT INTO download_gate DEFAULT VALUES;
    """,
    # 11: a URL's userinfo (``user:password@``) is a secret: the stored URLs lose it, as new ones do
    # (``sourcetext.public_url``); a channel stored with and without one becomes one channel
    f"""
    INSERT INTO channels (url, first_seen, last_run)
        SELECT {_PUBLIC.format("url")}, min(first_seen), max(last_run) FROM channels
        WHERE url ~ '{_USERINFO}' GROUP BY 1
        ON CONFLICT (url) DO UPDATE SET first_seen = least(channels.first_seen, EXCLUDED.first_seen),
            last_run = greatest(channels.last_run, EXCLUDED.last_run);
    UPDATE videos SET channel = {_PUBLIC.format("channel")} WHERE channel ~ '{_USERINFO}';
    UPDATE videos SET url = {_PUBLIC.format("url")} WHERE url ~ '{_USERINFO}';
    UPDATE videos SET webpage_url = {_PUBLIC.format("webpage_url")} WHERE webpage_url ~ '{_USERINFO}';
    DELETE FROM channels WHERE url ~ '{_USERINFO}';
    INSERT INTO unknown_numbers (channel, last)
        SELECT {_PUBLIC.format("channel")}, max(last) FROM unknown_numbers
        WHERE channel ~ '{_USERINFO}' GROUP BY 1
        ON CONFLICT (channel) DO UPDATE SET last = greatest(unknown_numbers.last, EXCLUDED.last);
    DELETE FROM unknown_numbers WHERE channel ~ '{_USERINFO}';
    INSERT INTO unknown_speakers (label, embedding, model, weight, updated_at, channel)
        SELECT DISTINCT ON (model, pub, label) label, embedding, model, weight, updated_at, pub
        FROM (SELECT *, {_PUBLIC.format("channel")} AS pub FROM unknown_speakers
              WHERE channel ~ '{_USERINFO}') AS u
        ORDER BY model, pub, label, weight DESC
        ON CONFLICT (model, channel, label) DO NOTHING;
    DELETE FROM unknown_speakers WHERE channel ~ '{_USERINFO}';
    """.replace("{", "{{").replace("}", "}}"),
    # 12: many embedding models in one database (db/embeddings.py). ``segments.embedding`` loses
    # its fixed size; each model is registered with its size, and its HNSW index is a partial
    # expression index over its own rows, so the one index of the fixed-size column goes. The rows
    # stored so far stay, under the model recorded with each of them, at the size they have.
    """
    DROP INDEX IF EXISTS segments_embedding_hnsw;
    ALTER TABLE segments ALTER COLUMN embedding TYPE vector;
    CREATE TABLE embed_models (
        id         serial PRIMARY KEY,
        name       text NOT NULL UNIQUE,
        dim        integer NOT NULL CHECK (dim > 0),
        created_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO embed_models (name, dim) SELECT DISTINCT embed_model, {dim} FROM segments ORDER BY 1;
    """,
    # 13: checkpoints (``db/checkpoints.py``): each finished window of a video not yet stored, per
    # ASR model, so a re-run or another worker resumes after it; deleted once the video is stored
    """
    CREATE TABLE checkpoints (
        video_id      text NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
        window_index  integer NOT NULL,
        asr_model     text NOT NULL,
        embed_model   text NOT NULL,
        speaker_model text NOT NULL DEFAULT '',
        last          boolean NOT NULL,
        seconds       double precision NOT NULL,
        language      text NOT NULL,
        probability   double precision,
        warning       text,
        segments      text NOT NULL,
        voices        text NOT NULL,
        dim           integer NOT NULL,
        vectors       bytea NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (video_id, window_index, asr_model)
    );
    """,
    # 14: full-text search per video in its language (ytingest/languages.py). Each segment carries
    # its video's text-search configuration (``english`` by default, as every row so far was
    # searched); storing a video sets its language, and the trigger moves its rows to that
    # language's configuration (no row is touched for English). The full-text index becomes
    # ``to_tsvector(ts_config, text)``, rebuilt by ``ensure_search_index``. Rows stored so far get
    # their video's configuration here.
    """
    CREATE TABLE text_search_languages (
        language text PRIMARY KEY,
        config   regconfig NOT NULL
    );
    INSERT INTO text_search_languages (language, config)
        SELECT l.language, c.oid::regconfig FROM (VALUES
        ('ar', 'arabic'), ('ca', 'catalan'), ('da', 'danish'), ('de', 'german'), ('el', 'greek'),
        ('en', 'english'), ('es', 'spanish'), ('et', 'estonian'), ('eu', 'basque'),
        ('fi', 'finnish'), ('fr', 'french'), ('ga', 'irish'), ('hi', 'hindi'), ('hu', 'hungarian'),
        ('hy', 'armenian'), ('id', 'indonesian'), ('it', 'italian'), ('lt', 'lithuanian'),
        ('ne', 'nepali'), ('nl', 'dutch'), ('nn', 'norwegian'), ('no', 'norwegian'),
        ('pt', 'portuguese'), ('ro', 'romanian'), ('ru', 'russian'), ('sr', 'serbian'),
        ('sv', 'swedish'), ('ta', 'tamil'), ('tr', 'turkish'), ('yi', 'yiddish')
        ) AS l(language, name)
        JOIN pg_ts_config c ON c.cfgname = l.name AND c.cfgnamespace = 'pg_catalog'::regnamespace;
    CREATE FUNCTION ytingest_ts_config(video_language text) RETURNS regconfig
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN coalesce(btrim(video_language), '') = '' THEN 'english'::regconfig
               ELSE coalesce((SELECT t.config FROM text_search_languages t
                              WHERE t.language = lower(substring(btrim(video_language) FROM '^[^-_]*'))),
                             'simple'::regconfig) END
        $$;
    ALTER TABLE segments ADD COLUMN ts_config regconfig NOT NULL DEFAULT 'english'::regconfig;
    UPDATE segments s SET ts_config = ytingest_ts_config(v.language)
        FROM videos v WHERE v.id = s.video_id AND ytingest_ts_config(v.language) <> 'english'::regconfig;
    CREATE FUNCTION ytingest_segments_follow_language() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        config regconfig := ytingest_ts_config(NEW.language);
    BEGIN
        UPDATE segments SET ts_config = config WHERE video_id = NEW.id AND ts_config <> config;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER videos_language_ts_config AFTER UPDATE OF language ON videos
        FOR EACH ROW EXECUTE FUNCTION ytingest_segments_follow_language();
    DROP INDEX IF EXISTS segments_text_fts;
    """,
)


async def prepare(conn: asyncpg.Connection) -> int | None:
    """Make sure pgvector is installed; return the stored embedding size (None: new database)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS ytingest_meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        value = await conn.fetchval("SELECT value FROM ytingest_meta WHERE key = 'embedding_dim'")
    return int(value) if value is not None else None


async def migrate(conn: asyncpg.Connection, dim: int) -> int:
    """Bring the schema up to date for embeddings of ``dim`` dimensions; return the version."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        rows = await conn.fetch("SELECT key, value FROM ytingest_meta")
        meta = {r["key"]: r["value"] for r in rows}
        version = int(meta.get("schema_version", "0"))
        stored_dim = int(meta.get("embedding_dim", dim))
        if stored_dim != dim:
            raise ConfigError(
                f"the database holds {stored_dim}-d embeddings but the embedding model gives {dim}-d;"
                " use the model the database was built with, or a new database"
            )
        for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.execute(sql.format(dim=dim))
            version = number
        await conn.execute(
            "INSERT INTO ytingest_meta (key, value) VALUES ('schema_version', $1), ('embedding_dim', $2)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            str(version),
            str(dim),
        )
    return version
