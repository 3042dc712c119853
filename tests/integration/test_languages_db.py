"""Full-text search per video language on real PostgreSQL: each row is stemmed in its video's
text-search configuration, a query in the one ``lang`` names (or detected, or every stored one)."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

import ytingest.db.schema as schema
from ytingest.db.database import Database
from ytingest.db.search import _KEYWORD
from ytingest.errors import ConfigError
from ytingest.items import EmbeddedTranscript, Segment, Transcript, VideoRef
from ytingest.languages import TEXT_SEARCH_CONFIGS, config_literal
from ytingest.search import SearchQuery

DIM = 8
TEXTS = {
    "de": ("Die alten Häuser der Stadt wurden renoviert.", "Viele Familien wohnen dort seit Jahren."),
    "en": ("The houses of the old town were restored.", "Many families have lived there for years."),
    "es": ("Las casas viejas de la ciudad fueron renovadas.", "Muchas familias viven allí desde hace años."),
}


def item(vid: str, language: str | None, texts: tuple[str, ...]) -> EmbeddedTranscript:
    segs = tuple(Segment(i, i * 2.0, i * 2.0 + 1.5, t) for i, t in enumerate(texts))
    vecs = np.eye(DIM, dtype=np.float32)[: len(texts)]
    ref = VideoRef(vid, f"http://x/{vid}", title=vid.upper(), webpage_url=f"http://x/{vid}")
    return EmbeddedTranscript(Transcript(ref, segs, len(texts) * 2.0, language or "", None), vecs)


async def open_db(dsn: str, *items: EmbeddedTranscript) -> Database:
    db = Database(dsn)
    await db.connect()
    await db.migrate(DIM)
    for it in items:
        await db.register_video(it.transcript.video)
    if items:
        await db.store_transcripts(list(items), asr_model="m", embed_model="e")
    return db


async def keyword(db: Database, text: str, lang: str | None = None) -> list[tuple[str, int]]:
    hits = await db.search(SearchQuery(text, mode="keyword", limit=20, lang=lang), None)
    return [(h.video_id, h.idx) for h in hits]


async def test_rows_carry_their_videos_configuration(fresh_dsn: str, conn: asyncpg.Connection) -> None:
    """A stored video's rows take its language's configuration; a re-store in another language
    moves them; an unstemmed language is ``simple``."""
    db = await open_db(
        fresh_dsn,
        item("de", "de", TEXTS["de"]),
        item("en", "en", TEXTS["en"]),
        item("ja", "ja", ("konnichiwa",)),
    )
    try:
        sql = "SELECT video_id, ts_config::text AS c, count(*) FROM segments GROUP BY 1, 2 ORDER BY 1"
        assert [tuple(r) for r in await conn.fetch(sql)] == [
            ("de", "german", 2),
            ("en", "english", 2),
            ("ja", "simple", 1),
        ]
        await db.store_transcripts([item("de", "es", TEXTS["es"])], asr_model="m", embed_model="e")
        assert [tuple(r) for r in await conn.fetch(sql)][0] == ("de", "spanish", 2)
    finally:
        await db.close()


async def test_a_stemmed_german_query_needs_the_german_configuration(fresh_dsn: str) -> None:
    """``Haus`` finds ``Häuser`` (German stemming) with lang=de, not with lang=en; English is
    searched as before; every language alone finds only its own rows."""
    db = await open_db(fresh_dsn, item("de", "de", TEXTS["de"]), item("en", "en", TEXTS["en"]))
    try:
        assert await keyword(db, "Haus", "de") == [("de", 0)]
        assert await keyword(db, "Haus", "german") == [("de", 0)]
        assert await keyword(db, "Haus", "en") == []
        assert await keyword(db, "Familie", "de") == [("de", 1)]
        assert await keyword(db, "restoring houses", "en") == [("en", 0)]
        assert await keyword(db, "family", "en") == [("en", 1)]  # families -> famili (English stemmer)
        assert await keyword(db, "family", "de") == []
    finally:
        await db.close()


async def test_a_query_without_lang_is_detected_or_searched_in_every_language(fresh_dsn: str) -> None:
    """No ``lang``: a clearly German query is parsed in German; a one-word query the detector is
    unsure of is parsed in every stored configuration, each row in its own; English as before."""
    db = await open_db(
        fresh_dsn, item("de", "de", TEXTS["de"]), item("en", "en", TEXTS["en"]), item("es", "es", TEXTS["es"])
    )
    try:
        assert await keyword(db, "die alten Häusern der Stadt") == [("de", 0)]
        assert await keyword(db, "the houses were restored") == [("en", 0)]
        assert await keyword(db, "las casas viejas") == [("es", 0)]
        assert await keyword(db, "viejo", "es") == [("es", 0)]  # viejas/viejo -> viej (Spanish stemmer)
        assert await keyword(db, "viejo", "en") == []
        # each row in its own language: Familien (de), families (en), familias (es)
        assert set(await keyword(db, "Familie familia family")) >= {("de", 1), ("en", 1)}
        hybrid = await db.search(SearchQuery("Häuser", limit=5), np.eye(DIM, dtype=np.float32)[0])
        assert ("de", 0) in [(h.video_id, h.idx) for h in hybrid]
    finally:
        await db.close()


async def test_an_english_only_database_searches_as_before(fresh_dsn: str) -> None:
    """With only English (and pre-language NULL) rows every query is parsed in English."""
    db = await open_db(
        fresh_dsn, item("en", "en", TEXTS["en"]), item("old", None, ("The old houses stood.",))
    )
    try:
        assert set(await keyword(db, "house")) == {("en", 0), ("old", 0)}
        assert await keyword(db, "casas viejas renovadas familias") == []
    finally:
        await db.close()


async def test_a_bad_lang_is_refused() -> None:
    """A ``lang`` that is neither a language code nor a configuration is a ConfigError."""
    with pytest.raises(ConfigError, match="unknown language 'klingon'"):
        SearchQuery("x", lang="klingon")


async def test_the_keyword_search_uses_the_full_text_index(fresh_dsn: str, conn: asyncpg.Connection) -> None:
    """The keyword query reads ``segments_text_fts``, in the generic plan a prepared statement
    gets after five runs too."""
    db = await open_db(fresh_dsn, item("de", "de", TEXTS["de"]), item("en", "en", TEXTS["en"]))
    try:
        assert await db.ensure_search_index() is True
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # as after 5 runs
            keyword_sql = _KEYWORD.format(config=config_literal("german"))
            await conn.execute(
                f"PREPARE kw(text, int, text, text, text, date, date, text[], text, text) AS {keyword_sql}"
            )
            sql = "EXPLAIN EXECUTE kw('Haus', 20, NULL, NULL, NULL, NULL, NULL, '{}', '', 'Haus')"
            plan = "\n".join(r[0] for r in await conn.fetch(sql))
            await conn.execute("DEALLOCATE kw")
        assert "Bitmap Index Scan on segments_text_fts" in plan, plan
        assert await keyword(db, "Häuser", "de") == [("de", 0)]
    finally:
        await db.close()


async def test_the_table_of_languages_is_the_python_mapping(fresh_dsn: str, conn: asyncpg.Connection) -> None:
    """The migration's copy of the mapping equals ``TEXT_SEARCH_CONFIGS`` (a change needs a migration)."""
    db = await open_db(fresh_dsn)
    try:
        rows = await conn.fetch("SELECT language, config::text AS config FROM text_search_languages")
        assert {r["language"]: r["config"] for r in rows} == TEXT_SEARCH_CONFIGS
        for code in ("de", "DE-at", "pt_BR", "ja", "", None):
            got = await conn.fetchval("SELECT ytingest_ts_config($1)::text", code)
            from ytingest.languages import ts_config

            assert got == ts_config(code), code
    finally:
        await db.close()


async def test_the_migration_moves_stored_rows_to_their_language(
    fresh_dsn: str, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before this migration: its German video's rows become German, the English
    ones stay, and a German stemmed query finds them afterwards."""
    full = schema.MIGRATIONS
    index = next(i for i, sql in enumerate(full) if "text_search_languages" in sql)
    monkeypatch.setattr(schema, "MIGRATIONS", full[:index])
    db = await open_db(fresh_dsn, item("de", "de", TEXTS["de"]), item("en", "en", TEXTS["en"]))
    await db.close()
    monkeypatch.setattr(schema, "MIGRATIONS", full)
    db = await open_db(fresh_dsn)
    try:
        sql = "SELECT DISTINCT video_id, ts_config::text FROM segments ORDER BY 1"
        assert [tuple(r) for r in await conn.fetch(sql)] == [("de", "german"), ("en", "english")]
        assert await keyword(db, "Haus", "de") == [("de", 0)]
        assert await keyword(db, "house", "en") == [("en", 0)]
    finally:
        await db.close()
