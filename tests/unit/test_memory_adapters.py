"""The in-memory adapters of ``ytingest.testing.fakes`` run the real engine end to end, as an app
that embeds ``Engine`` would use them in its own tests: every video stored once, searchable."""

from __future__ import annotations

from pathlib import Path

from ytingest import Engine, Settings
from ytingest.testing.fakes import (
    FakeDownloader,
    FakeEmbedder,
    FakeSource,
    FakeTranscriber,
    MemoryStore,
    refs,
)


async def test_the_engine_runs_on_the_fakes_and_search_reads_what_was_stored(tmp_path: Path) -> None:
    store = MemoryStore()
    settings = Settings(ytingest_home=tmp_path, speakers=False, batch_max_age_s=0.05)
    engine = Engine(
        settings,
        discoverer=FakeSource(refs(5)),
        downloader=FakeDownloader(fail={"v003"}),
        transcriber=FakeTranscriber(segments=2),
        embedder=FakeEmbedder(),
        database=store,  # type: ignore[arg-type]  # the engine's reads need the PostgreSQL adapter
    )
    async with engine:
        summary = await engine.stream("memory://channel")
        hits = await engine.search("v002 segment", mode="keyword")
    assert (summary.done, summary.failed) == (4, 1)
    assert sorted(store.store_calls) == ["v000", "v001", "v002", "v004"]  # each once
    assert store.statuses["v003"] == "failed" and "404" in store.reasons["v003"]
    assert [h.video_id for h in hits] == ["v002", "v002"] and {h.idx for h in hits} == {0, 1}
    assert store.index_builds == 1


async def test_memory_search_filters_by_video_and_speaker(tmp_path: Path) -> None:
    store = MemoryStore()
    engine = Engine(
        Settings(ytingest_home=tmp_path, speakers=False, batch_max_age_s=0.05),
        discoverer=FakeSource(refs(3)),
        downloader=FakeDownloader(),
        transcriber=FakeTranscriber(segments=3),
        embedder=FakeEmbedder(),
        database=store,  # type: ignore[arg-type]
    )
    async with engine:
        await engine.stream("memory://channel")
        everything = await engine.search("segment", mode="keyword", limit=100)
        one_video = await engine.search("segment", mode="keyword", video="v001")
        nobody = await engine.search("segment", mode="keyword", speaker="alice")
    assert len(everything) == 9
    assert {h.video_id for h in one_video} == {"v001"} and len(one_video) == 3
    assert nobody == []
