"""``SearchStore``: the search indexes and the reads behind ``search``, ``/api/videos`` and ``channels``.

Semantic ranking is pgvector's HNSW over cosine distance. Keyword ranking is PostgreSQL full-text
search (``websearch_to_tsquery``: words, ``"quoted phrases"``, ``-not``) over a GIN expression
index, each segment in its video's language and the query in the configuration(s) that
``languages.query_configs`` picks (``--lang``, detected, or every stored one, each matched with
its own rows); segments with all the words rank above those with some. Hybrid fuses the semantic
list with the keyword list's segments that have every word, by reciprocal-rank fusion: a segment that
shares one word of a long question with the query is not evidence, and fused with a semantic rank
it would outrank the semantic first place (measured: bench/search_quality.py).
Every mode applies the same filters: a quoted phrase must appear as whole words in that order
(case, and spaces vs hyphens, aside), and ``-word`` / ``-"phrase"`` exclusions hold in every mode.
Each embedding model's vectors are ranked apart, through the model's own HNSW index
(``db/embeddings.py``): a query is compared with the vectors of its embedder's model only.
The indexes are built after a load (``ensure_search_index``), not row by row while storing."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import numpy.typing as npt

from ytingest.db.embeddings import all_models, model_for_search
from ytingest.db.pool import Store, retried
from ytingest.items import SearchHit
from ytingest.languages import base_code, config_for_lang, config_literal, query_configs
from ytingest.search import SearchQuery, fuse, phrase_pattern, timestamp_url
from ytingest.sourcetext import pg_text, public_url

_TSV = "to_tsvector(s.ts_config, s.text)"  # each row in its video's language (ytingest/languages.py)
_INDEX_LOCK = 0x79746978  # "ytix": one index build at a time across processes
SEARCH_INDEXES = {  # and one HNSW index per embedding model (db/embeddings.py)
    "segments_text_fts": "CREATE INDEX IF NOT EXISTS segments_text_fts"
    " ON segments USING gin (to_tsvector(ts_config, text))",
}
# $1 is the ranking's own argument (a vector or the query text), $2 the depth; then the filters:
# $8 the phrases as whole-word patterns, $9 the exclusions (websearch syntax; stop words alone
# make an empty tsquery, which excludes nothing)
_FILTERS = f"""
      ($3::text IS NULL OR s.speaker = $3)
  AND ($4::text IS NULL OR v.channel = $4)
  AND ($5::text IS NULL OR s.video_id = $5)
  AND ($6::date IS NULL OR v.upload_date >= $6)
  AND ($7::date IS NULL OR v.upload_date <= $7)
  AND s.text ~* ALL($8::text[])
  AND ($9 = '' OR numnode(websearch_to_tsquery(s.ts_config, $9)) = 0
       OR {_TSV} @@ websearch_to_tsquery(s.ts_config, $9))"""
# iterative HNSW scans return rows in roughly distance order: sorted again once materialised.
# {model} and {vector}: the query embedder's model as a literal and its vector expression, as in
# its partial index (db/embeddings.py)
_SEMANTIC = f"""
WITH nearest AS MATERIALIZED (
  SELECT s.video_id, s.idx, {{vector}} <=> $1 AS distance
  FROM segments s JOIN videos v ON v.id = s.video_id
  WHERE s.embed_model = {{model}} AND {_FILTERS}
  ORDER BY {{vector}} <=> $1 LIMIT $2)
SELECT video_id, idx, 1 - distance AS score FROM nearest ORDER BY distance, video_id, idx"""
# segments with every word of the query first, then those with some, each by cover density;
# $10: the query's words and phrases joined by ``or``. {config}: the text-search configuration the
# query is parsed in, as a literal (one of ``languages.CONFIGS``), matched against the rows stored
# in it. A literal, not a parameter: a prepared statement's generic plan (after five runs) keeps
# its index scan only with a constant configuration (a parameter: 0.4 s instead of 1 ms on 100k
# rows). A query in several configurations runs once per configuration.
_KEYWORD = f"""
SELECT s.video_id, s.idx, ts_rank_cd({_TSV}, any_q) AS score, {_TSV} @@ all_q AS every
FROM segments s JOIN videos v ON v.id = s.video_id,
     websearch_to_tsquery({{config}}, $1) all_q, websearch_to_tsquery({{config}}, $10) any_q
WHERE s.ts_config = {{config}} AND {_TSV} @@ any_q AND {_FILTERS}
ORDER BY every DESC, score DESC, s.video_id, s.idx LIMIT $2"""
# each stored language (NULL: before languages were recorded) with its configuration
_STORED_LANGUAGES = """
SELECT language, ytingest_ts_config(language)::text AS config
FROM (SELECT DISTINCT language FROM videos WHERE status = 'done') AS stored"""
_DETAILS = """
SELECT s.video_id, s.idx, s.start_s, s.end_s, s.text, s.speaker, v.title, v.webpage_url, v.url,
       v.channel, v.upload_date, v.language, v.language_probability,
       COALESCE(p.text, '') AS before, COALESCE(n.text, '') AS after
FROM unnest($1::text[], $2::int[]) AS k(video_id, idx)
JOIN segments s ON s.video_id = k.video_id AND s.idx = k.idx
JOIN videos v ON v.id = s.video_id
LEFT JOIN segments p ON p.video_id = s.video_id AND p.idx = s.idx - 1
LEFT JOIN segments n ON n.video_id = s.video_id AND n.idx = s.idx + 1"""

Key = tuple[str, int]


class SearchStore(Store):
    """The search indexes, ranked search with filters, and the video and channel listings."""

    @retried
    async def ensure_search_index(self) -> bool:
        """Build the HNSW and full-text indexes that are missing (after a first load: one bulk build
        each, not one insert per row while storing). True when any was built now. Many workers
        finish together: the first takes the lock and builds, the others see it taken and go on."""
        built = False
        async with self._conn("build the search indexes") as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _INDEX_LOCK):
                return False
            indexes = dict(SEARCH_INDEXES)
            indexes.update((m.index, m.index_sql()) for m in await all_models(conn))
            for name, sql in indexes.items():
                if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
                    await conn.execute(sql)
                    built = True
        return built

    async def search(
        self, query: SearchQuery, vector: npt.NDArray[np.float32] | None = None
    ) -> list[SearchHit]:
        """The best ``query.limit`` segments in ``query.mode`` (``vector``: the query's embedding,
        needed by the semantic and hybrid modes), each with its neighbours for context."""
        parts = query.parts
        filters = (  # a user's text: no NUL (PostgreSQL refuses it); a channel named with its password
            None if query.speaker is None else pg_text(query.speaker),
            None if query.channel is None else pg_text(public_url(query.channel)),
            query.video,
            query.since,
            query.until,
            [phrase_pattern(p) for p in parts.phrases],
            " ".join(parts.excluded),
        )
        rankings: list[list[tuple[Key, float]]] = []
        async with self._conn("search") as conn, conn.transaction():
            if query.mode != "keyword":
                if vector is None:
                    raise ValueError(f"a {query.mode} search needs the query's embedding")
                model = await model_for_search(conn, query.embed_model, len(vector))
                rows = []
                if model is not None:
                    await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    sql = _SEMANTIC.format(model=model.literal, vector=model.vector)
                    rows = await conn.fetch(sql, vector, query.candidates, *filters)
                rankings.append([((r["video_id"], r["idx"]), float(r["score"])) for r in rows])
            if query.mode != "semantic":
                rows = []
                for config in await _query_configs(conn, query):
                    sql = _KEYWORD.format(config=config_literal(config))
                    rows += await conn.fetch(
                        sql, pg_text(query.text), query.candidates, *filters, parts.any_words()
                    )
                rows.sort(key=lambda r: (not r["every"], -r["score"], r["video_id"], r["idx"]))
                rows = rows[: query.candidates]
                if query.mode == "hybrid":  # only segments with every word: see the module docstring
                    rows = [r for r in rows if r["every"]]
                rankings.append([((r["video_id"], r["idx"]), float(r["score"])) for r in rows])
            if query.mode == "hybrid":
                ranked = fuse([[key for key, _ in r] for r in rankings], query.candidates)
            else:
                ranked = rankings[0]
            if query.min_score is not None:
                ranked = [(key, score) for key, score in ranked if score >= query.min_score]
            ranked = ranked[: query.limit]
            rows = await conn.fetch(_DETAILS, [k[0] for k, _ in ranked], [k[1] for k, _ in ranked])
        found = {(r["video_id"], r["idx"]): r for r in rows}
        return [_hit(found[key], score) for key, score in ranked if key in found]

    async def videos(self, *, channel: str | None = None) -> list[dict[str, Any]]:
        """Every known video (newest upload first, undated last), optionally of one channel, with
        the stored ones' language (and its detection's probability) and warning."""
        async with self._conn("list videos") as conn:
            rows = await conn.fetch(
                """SELECT id, title, channel, url, webpage_url, duration, status, segments, upload_date,
                          language, round(language_probability::numeric, 4)::float8 AS language_probability,
                          warning
                   FROM videos WHERE ($1::text IS NULL OR channel = $1)
                   ORDER BY upload_date DESC NULLS LAST, id""",
                None if channel is None else pg_text(public_url(channel)),
            )
        return [
            {**dict(r), "upload_date": r["upload_date"].isoformat() if r["upload_date"] else None}
            for r in rows
        ]

    async def channels(self) -> list[dict[str, Any]]:
        """Each channel with its name (the uploader's, as the most videos give it; null when none
        says), videos done, failed and pending, hours of stored audio, newest upload, last run."""
        async with self._conn("list channels") as conn:
            rows = await conn.fetch(
                """SELECT c.url, c.last_run, mode() WITHIN GROUP (ORDER BY v.channel_name) AS name,
                          max(v.upload_date) AS latest_upload,
                          count(v.id) FILTER (WHERE v.status = 'done') AS done,
                          count(v.id) FILTER (WHERE v.status = 'failed') AS failed,
                          count(v.id) FILTER (WHERE v.status = 'pending') AS pending,
                          COALESCE(sum(v.audio_seconds) FILTER (WHERE v.status = 'done'), 0) AS audio_s
                   FROM channels c LEFT JOIN videos v ON v.channel = c.url
                   GROUP BY c.url, c.last_run HAVING count(v.id) > 0 ORDER BY c.url"""
            )
        return [
            {
                "url": r["url"],
                "name": r["name"],
                "done": r["done"],
                "failed": r["failed"],
                "pending": r["pending"],
                "audio_hours": round(float(r["audio_s"]) / 3600, 3),
                "latest_upload": r["latest_upload"].isoformat() if r["latest_upload"] else None,
                "last_run": r["last_run"].isoformat() if r["last_run"] else None,
            }
            for r in rows
        ]


async def _query_configs(conn: Any, query: SearchQuery) -> list[str]:
    """The configurations ``query``'s words are parsed with (``languages.query_configs``): its
    ``lang``, else the language detected among those stored (off the event loop: the detector's
    model loads once, in about 2 s), else every stored one."""
    if query.lang is not None:
        return [config_for_lang(query.lang)]
    stored = {base_code(r["language"] or "en"): r["config"] for r in await conn.fetch(_STORED_LANGUAGES)}
    words = " ".join((*query.parts.phrases, *query.parts.words))
    return list(await asyncio.to_thread(query_configs, None, words, stored))


def _hit(r: Any, score: float) -> SearchHit:
    media = r["url"] or r["webpage_url"]
    return SearchHit(
        video_id=r["video_id"],
        idx=r["idx"],
        title=r["title"],
        url=timestamp_url(r["webpage_url"] or r["url"], r["start_s"]),
        media_url=media.split("#", 1)[0],
        channel=r["channel"],
        upload_date=r["upload_date"].isoformat() if r["upload_date"] else None,
        start=r["start_s"],
        end=r["end_s"],
        text=r["text"],
        before=r["before"],
        after=r["after"],
        speaker=r["speaker"],
        score=score,
        language=r["language"],
        language_probability=r["language_probability"],
    )
