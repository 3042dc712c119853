"""What the search indexes cost the store path, side by side in one run.

The bundled channel is ingested once with the real engine; its rows are repeated to ~10,000 and
written through the store stage (``sink_replay``) into fresh databases that already hold: no
search index, the full-text GIN index only, the HNSW index only, both; five rounds, the cases
interleaved, medians compared. The GIN index's pending-list merge is counted in its store time.
A first load builds both after the rows are in (``ensure_search_index``), timed here too; later
runs insert into them.

    python -m bench.search_index_cost        # writes bench/results/search_index.json
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from bench.measure import sink_replay, stored_items
from bench.run import RESULTS, new_database, repeated
from ytingest import Engine, Settings
from ytingest.db.database import Database
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.db.search import SEARCH_INDEXES
from ytingest.testing import ChannelServer, sample_episodes

CASES: dict[str, tuple[str, ...]] = {
    "none": (),
    "text": ("segments_text_fts",),
    "hnsw": ("segments_embedding_hnsw",),
    "both": tuple(SEARCH_INDEXES),
}


async def merge_pending(dsn: str, indexes: tuple[str, ...]) -> float:
    """Seconds to merge the GIN index's pending list into the index: with ``fastupdate`` (the
    default) inserts only append to that list, and the merge is paid later, so it is counted here."""
    if "segments_text_fts" not in indexes:
        return 0.0
    conn = await asyncpg.connect(dsn)
    try:
        t0 = time.perf_counter()
        await conn.fetchval("SELECT gin_clean_pending_list('segments_text_fts')")
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def main(rows: int = 10_000, rounds: int = 5) -> dict[str, Any]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        server = await pg.start()
        try:
            dsn = await new_database(server, "bench_ingest")
            settings = Settings(ytingest_home=Path(tmp) / "home", database_url=dsn)
            async with ChannelServer(sample_episodes()) as channel, Engine(settings) as engine:
                await engine.stream(channel.feed_url)
                dim = (await engine.embedder()).dim
            items = repeated(await stored_items(dsn), rows)
            store: dict[str, list[float]] = {name: [] for name in CASES}
            for _round in range(rounds):  # the cases interleaved, each round into fresh databases
                for name, indexes in CASES.items():
                    dsn = await new_database(server, f"bench_idx_{name}")
                    stored = (await sink_replay(dsn, items, dim, indexes=indexes))["store"]
                    store[name].append(stored + await merge_pending(dsn, indexes))
            db = Database(dsn)  # the last case's rows are in: drop its indexes, time both builds
            await db.connect()
            conn = await asyncpg.connect(dsn)
            for name in SEARCH_INDEXES:
                await conn.execute(f"DROP INDEX {name}")
            await conn.close()
            t0 = time.perf_counter()
            await db.ensure_search_index()
            build_s = time.perf_counter() - t0
            await db.close()
        finally:
            await pg.stop()
    median = {name: statistics.median(times) for name, times in store.items()}
    return {
        "rows": sum(len(it.transcript.segments) for it in items),
        "rounds": rounds,
        "store_s": {name: [round(t, 3) for t in times] for name, times in store.items()},
        "median_store_time_vs_no_index": {k: round(v / median["none"], 3) for k, v in median.items()},
        "median_both_vs_hnsw_only": round(median["both"] / median["hnsw"], 3),
        "build_both_after_load_s": round(build_s, 3),
    }


if __name__ == "__main__":
    result = asyncio.run(main())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search_index.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
