"""Search quality: recall@1 and recall@5 of semantic, keyword and hybrid search, per kind of query.

    python -m bench.search_quality      # prints the table, writes bench/results/search_quality.json

Ingests every bundled recording (six sample episodes, two dialogues, the real-speech clips) with the
real engine into a temporary embedded PostgreSQL, then runs each (query → expected segment) pair
of ``ytingest/testing/samples/search_queries.json`` in the three modes (top 5). See
``tests.support.search_eval`` for how a hit is judged.
"""

from __future__ import annotations

import asyncio
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import structlog

from tests.support.search_eval import ingest_and_evaluate
from ytingest import Settings
from ytingest.db.embedded import EmbeddedPostgres

RESULTS = Path(__file__).parent / "results"


async def main() -> dict[str, Any]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # quiet: errors only
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = await pg.start()
        try:
            run = await ingest_and_evaluate(Settings(ytingest_home=Path(tmp) / "home", database_url=dsn))
        finally:
            await pg.stop()
    ev = run.evaluation
    print(ev.table())
    print(f"\n{len(ev.cases)} pairs; ingest {run.ingest_s:.1f} s, evaluation {run.eval_s:.1f} s")
    for case in run.unmatched:
        print(f"expected text never transcribed: {case.query!r} → {case.video_id} {list(case.expect)}")
    for line in ev.shortfalls():
        print("hybrid shortfall:", line)
    for case in ev.lost():
        print("hybrid ranks lower than a single mode:", ev.describe(case))
        for row in ev.explain(case):
            print("    ", row)
    return {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "videos_done": run.summary.done,
        "videos_failed": run.summary.failed,
        "segments": run.summary.segments,
        "audio_seconds": round(run.summary.audio_seconds, 1),
        "ingest_seconds": round(run.ingest_s, 1),
        "eval_seconds": round(run.eval_s, 1),
        "unmatched_pairs": [c.query for c in run.unmatched],
        "table": ev.table(),
        **ev.to_dict(),
        "transcripts": {vid: [text for _, text in rows] for vid, rows in run.segments.items()},
    }


if __name__ == "__main__":
    result = asyncio.run(main())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search_quality.json").write_text(json.dumps(result, indent=1) + "\n")
