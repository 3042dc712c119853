"""Search quality on every bundled recording: hybrid is never worse than the better single mode."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.conftest import database_on
from tests.support.search_eval import KINDS, LIMIT, Run, corpus_episodes, ingest_and_evaluate, load_cases
from ytingest import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The corpus ingested once by the real engine into its own database, and the evaluation on it."""
    with database_on(pg_server, "ytingest_quality") as dsn:
        settings = Settings(ytingest_home=tmp_path_factory.mktemp("quality"), database_url=dsn)
        yield asyncio.run(ingest_and_evaluate(settings))


def test_the_pairs_cover_both_kinds_and_name_bundled_videos() -> None:
    """At least 20 pairs, at least 10 of each kind, each expecting a video of the corpus."""
    cases = load_cases()
    kinds = Counter(c.kind for c in cases)
    assert len(cases) >= 20 and all(kinds[k] >= 10 for k in KINDS), kinds
    ids = {e.id for e in corpus_episodes()}
    assert {c.video_id for c in cases} <= ids


def test_hybrid_is_at_least_as_good_as_either_mode_on_each_kind(run: Run) -> None:
    """Recall@1 and recall@5 of hybrid ≥ max(semantic, keyword), for keyword-like and paraphrase queries."""
    ev = run.evaluation
    print(f"\n{ev.table()}")
    for case in run.unmatched:
        print(f"expected text never transcribed: {case.query!r} → {case.video_id} {list(case.expect)}")
    assert run.summary.done == len(corpus_episodes()) and run.summary.failed == 0
    assert len(ev.of("hybrid")) == len(load_cases())
    losses = "\n".join(line for c in ev.lost() for line in (ev.describe(c), *ev.explain(c)))
    assert ev.shortfalls() == [], f"hybrid loses (ranks per mode, '-' = not in top {LIMIT}):\n{losses}"
