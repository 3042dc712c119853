"""What per-language full-text search costs, side by side in one run (docs/LANGUAGES.md).

Store: 120 videos x 150 rows, stored in groups of 10 into fresh databases, German and English
videos, with the schema before the language migration and with it (its trigger moves a
non-English video's rows to its configuration); four rounds, the cases interleaved, medians
compared. Search: 100,000 rows of English and German videos, keyword search for a word of one row
with ``lang`` given and detected, ten runs each (a prepared statement switches to its generic
plan after five; the first detection loads the detector's model).

    python -m bench.language_cost        # writes bench/results/language_cost.json
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import numpy as np

import ytingest.db.schema as schema
from ytingest.db.database import Database
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.items import EmbeddedTranscript, Segment, Transcript, VideoRef
from ytingest.search import SearchQuery

RESULTS = Path(__file__).parent / "results"
DIM, VIDEOS, SEGMENTS, GROUP, ROUNDS = 384, 120, 150, 10, 4
FULL = schema.MIGRATIONS
BEFORE = FULL[: next(i for i, sql in enumerate(FULL) if "text_search_languages" in sql)]
CASES = (
    ("before_de", BEFORE, "de"),
    ("before_en", BEFORE, "en"),
    ("now_en", FULL, "en"),
    ("now_de", FULL, "de"),
)


def on(dsn: str, name: str) -> str:
    head, _, tail = dsn.partition("?")
    base = head.rsplit("/", 1)[0] if head.count("/") > 2 else head
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


def videos(prefix: str, language: str) -> list[EmbeddedTranscript]:
    rng = np.random.default_rng(0)
    out = []
    for v in range(VIDEOS):
        text = "Die alten Häuser der Stadt wurden renoviert, Satz {} von Video {}."
        segs = tuple(Segment(i, i * 4.0, i * 4.0 + 3.5, text.format(i, v)) for i in range(SEGMENTS))
        ref = VideoRef(
            f"{prefix}{v}", f"http://x/{prefix}{v}", title="t", webpage_url=f"http://x/{prefix}{v}"
        )
        vectors = rng.standard_normal((SEGMENTS, DIM)).astype(np.float32)
        out.append(EmbeddedTranscript(Transcript(ref, segs, SEGMENTS * 4.0, language, 0.9), vectors))
    return out


async def store_time(dsn: str, name: str, migrations: tuple[str, ...], language: str) -> float:
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    schema.MIGRATIONS = migrations
    db = Database(on(dsn, name))
    await db.connect()
    try:
        await db.migrate(DIM)
        items = videos(name, language)
        for it in items:
            await db.register_video(it.transcript.video)
        start = time.perf_counter()
        for i in range(0, len(items), GROUP):
            await db.store_transcripts(items[i : i + GROUP], asr_model="m", embed_model="e")
        return time.perf_counter() - start
    finally:
        await db.close()
        schema.MIGRATIONS = FULL


async def search_times(dsn: str) -> dict[str, list[float]]:
    admin = await asyncpg.connect(dsn)
    await admin.execute("CREATE DATABASE searched")
    await admin.close()
    db = Database(on(dsn, "searched"))
    await db.connect()
    conn = await asyncpg.connect(on(dsn, "searched"))
    try:
        await db.migrate(8)
        await conn.execute(
            "INSERT INTO videos (id, url, status, language) SELECT 'v' || i, 'u', 'done',"
            " CASE WHEN i % 5 = 0 THEN 'de' ELSE 'en' END FROM generate_series(1, 400) i"
        )
        await conn.execute(
            """INSERT INTO segments (video_id, idx, start_s, end_s, text, embedding, embed_model, ts_config)
               SELECT 'v' || v, j, j, j + 1,
                      CASE WHEN v % 5 = 0 THEN 'die alten Häuser der Stadt ' || j
                           ELSE 'the sourdough starter rises ' || (j * v % 997) END,
                      '[1,0,0,0,0,0,0,0]', 'e',
                      CASE WHEN v % 5 = 0 THEN 'german'::regconfig ELSE 'english'::regconfig END
               FROM generate_series(1, 400) v, generate_series(0, 249) j"""
        )
        await conn.execute(
            "INSERT INTO segments (video_id, idx, start_s, end_s, text, embedding, embed_model)"
            " VALUES ('v1', 9999, 0, 1, 'a rare pgvector remark', '[1,0,0,0,0,0,0,0]', 'e')"
        )
        await db.ensure_search_index()
        await conn.execute("ANALYZE")
        times: dict[str, list[float]] = {}
        for label, lang in (("lang_en", "en"), ("detected", None)):
            times[label] = []
            for _ in range(10):
                start = time.perf_counter()
                await db.search(SearchQuery("pgvector", mode="keyword", lang=lang), None)
                times[label].append(time.perf_counter() - start)
        return times
    finally:
        await conn.close()
        await db.close()


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-lang-") as folder:
        server = EmbeddedPostgres(Path(folder) / "pg")
        dsn = await server.start()
        try:
            await store_time(dsn, "warm", FULL, "en")
            runs: dict[str, list[float]] = {name: [] for name, _, _ in CASES}
            for r in range(ROUNDS):
                for name, migrations, language in CASES if r % 2 == 0 else CASES[::-1]:
                    runs[name].append(await store_time(dsn, f"{name}_{r}", migrations, language))
            searches = await search_times(dsn)
        finally:
            await server.stop()
    rows = VIDEOS * SEGMENTS
    base = statistics.median(runs["before_de"])
    report = {
        "store": {
            name: {
                "median_s": round(statistics.median(t), 3),
                "rows_per_s": round(rows / statistics.median(t)),
                "vs_before": round(statistics.median(t) / base, 2),
            }
            for name, t in runs.items()
        },
        "search_ms": {label: [round(t * 1000, 1) for t in ts] for label, ts in searches.items()},
    }
    print(json.dumps(report, indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "language_cost.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
