"""Bottleneck diagnosis on the real pipeline: a throttled source, a slowed decoder, a slowed ASR,
a slowed database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from ytingest import Engine, Settings
from ytingest.db.database import Database
from ytingest.items import EmbeddedTranscript, PreparedAudio
from ytingest.models.asr import AsrResult, WhisperTranscriber
from ytingest.models.embedder import SentenceEmbedder
from ytingest.monitor.dashboard import render
from ytingest.monitor.diagnose import Verdict
from ytingest.testing import ChannelServer, sample_episodes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models() -> tuple[WhisperTranscriber, SentenceEmbedder]:
    return WhisperTranscriber("bundled", device="cpu"), SentenceEmbedder("bundled", device="cpu")


def channel_of(n: int) -> ChannelServer:
    base = sample_episodes()[:5]  # the short ones
    return ChannelServer([replace(base[i % 5], id=f"{base[i % 5].id}-{i}") for i in range(n)])


def settings(tmp_path: Path, dsn: str, **knobs: Any) -> Settings:
    return Settings(
        ytingest_home=tmp_path,
        database_url=dsn,
        monitor_interval_s=0.25,
        diagnose_window_s=1.0,
        autotune=False,
        batch_max_age_s=0.2,
        **knobs,
    )


async def first_verdict(engine: Engine, url: str, want: str, on_seen: Any = None) -> Verdict | None:
    """Stream until the monitor announces ``want`` (or 60 s), then stop gracefully."""
    run = asyncio.create_task(engine.stream(url))
    found, deadline = None, time.monotonic() + 60
    while not run.done() and time.monotonic() < deadline:
        await asyncio.wait({run}, timeout=0.2)
        if engine.monitor is not None and engine.monitor.verdict.stage == want:
            found = engine.monitor.verdict
            if on_seen is not None:
                await on_seen(engine)
            break
    engine.stop()
    await asyncio.wait_for(run, 120)
    return found


async def test_throttled_source_is_a_download_bottleneck(
    tmp_path: Path, fresh_dsn: str, models: tuple[WhisperTranscriber, SentenceEmbedder]
) -> None:
    """8 KB/s per connection and IO_WORKERS=1: verdict download, advice to raise IO_WORKERS."""
    seen: dict[str, Any] = {}

    async def scrape(engine: Engine) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{engine.metrics_url}/metrics") as r:
                seen["metrics"] = await r.text()
            async with http.get(f"{engine.metrics_url}/status") as r:
                seen["status"] = await r.json()

    asr, emb = models
    cfg = settings(tmp_path, fresh_dsn, io_workers=1, metrics_port=0)
    channel = channel_of(10)
    channel.bandwidth = 8_000
    with structlog.testing.capture_logs() as logs:
        async with channel, Engine(cfg, transcriber=asr, embedder=emb) as engine:
            verdict = await first_verdict(engine, channel.feed_url, "download", scrape)
    assert verdict is not None, "no download verdict"
    assert "raise IO_WORKERS 1→" in verdict.advice and verdict.knob == "IO_WORKERS"
    assert verdict.evidence["asr_busy"] < 0.6 and verdict.evidence["download_busy"] >= 0.85
    event = next(e for e in logs if e["event"] == "bottleneck" and e["stage"] == "download")
    assert set(event) >= {"stage", "evidence", "advice"}

    families = {f.name: f for f in text_string_to_metric_families(seen["metrics"])}
    busy = {s.labels["stage"]: s.value for s in families["ytingest_stage_busy_ratio"].samples}
    assert set(busy) == {"download", "decode", "asr", "speakers", "embed", "store"}
    assert {"ytingest_queue_depth", "ytingest_stage_items", "ytingest_bottleneck"} <= set(families)
    depth = {s.labels["stage"]: s.value for s in families["ytingest_queue_depth"].samples}
    assert set(depth) == set(busy)  # ytingest_queue_depth{stage="decode"} among them
    doc = seen["status"]
    assert doc["snapshot"]["stages"]["decode"]["queue"] == "decode_q"
    screen = Console(record=True, width=160)
    screen.print(render(doc))
    text = screen.export_text()
    for name, stage in doc["snapshot"]["stages"].items():
        assert f"{stage['queue']}={stage['depth']}" in text, name
    assert f"done {doc['snapshot']['done']}" in text and doc["snapshot"]["verdict"]["stage"] in text


async def test_slowed_decoder_is_a_decode_bottleneck_not_asr(
    tmp_path: Path, fresh_dsn: str, models: tuple[WhisperTranscriber, SentenceEmbedder]
) -> None:
    """The real decoder slowed by a test hook, with a fast source and the real model: verdict
    decode (its queue backs up while ASR starves), with advice about the decoder, not ASR_WORKERS."""
    asr, emb = models

    class SlowDecoder:
        name = asr.name

        def prepare_windows(self, path: Path) -> Iterator[PreparedAudio]:
            time.sleep(1.5)
            yield from asr.prepare_windows(path)

        def detect_language(self, item: PreparedAudio) -> tuple[str, float | None]:
            return asr.detect_language(item)

        def transcribe_prepared(
            self, items: list[PreparedAudio], *, batch_size: int | None = None, languages: Any = None
        ) -> list[AsrResult]:
            return asr.transcribe_prepared(items, batch_size=batch_size, languages=languages)

        def transcribe(self, path: Path) -> AsrResult:
            return asr.transcribe(path)

    cfg = settings(tmp_path, fresh_dsn, io_workers=4, decode_queue_size=2, decode_process=False)
    with structlog.testing.capture_logs() as logs:
        async with channel_of(10) as channel, Engine(cfg, transcriber=SlowDecoder(), embedder=emb) as engine:
            verdict = await first_verdict(engine, channel.feed_url, "decode")
    assert verdict is not None, "no decode verdict"
    assert verdict.evidence["decode_busy"] >= 0.85 and verdict.evidence["decode_q"] >= 1
    assert verdict.evidence["asr_busy"] < 0.6
    assert "decoding is the limit" in verdict.advice and "ASR_WORKERS would not help" in verdict.advice
    announced = [e["stage"] for e in logs if e["event"] == "bottleneck"]
    assert "asr" not in announced[: announced.index("decode")]  # never blamed on ASR first


async def test_slowed_asr_is_an_asr_bottleneck(
    tmp_path: Path, fresh_dsn: str, models: tuple[WhisperTranscriber, SentenceEmbedder]
) -> None:
    """ASR slowed by a test hook with a fast source: verdict asr."""
    asr, emb = models

    class SlowAsr:
        name = asr.name

        def transcribe(self, path: Path) -> AsrResult:
            time.sleep(1.5)
            return asr.transcribe(path)

    cfg = settings(tmp_path, fresh_dsn, io_workers=4, decode_queue_size=2)
    async with channel_of(10) as channel, Engine(cfg, transcriber=SlowAsr(), embedder=emb) as engine:
        verdict = await first_verdict(engine, channel.feed_url, "asr")
    assert verdict is not None, "no asr verdict"
    assert verdict.evidence["asr_busy"] >= 0.85 and verdict.evidence["asr_q"] >= 1


async def test_slowed_store_is_a_store_bottleneck(
    tmp_path: Path, fresh_dsn: str, models: tuple[WhisperTranscriber, SentenceEmbedder]
) -> None:
    """Every database write slowed by a test hook: verdict store, advice to raise DB_WORKERS."""
    asr, emb = models

    class SlowDatabase(Database):
        async def store_transcripts(self, items: Sequence[EmbeddedTranscript], **kw: str) -> None:
            await asyncio.sleep(1.5 * len(items))
            await super().store_transcripts(items, **kw)

    cfg = settings(tmp_path, fresh_dsn, io_workers=4, db_workers=1, db_queue_size=2, embed_queue_size=2)
    db = SlowDatabase(fresh_dsn, pool_size=2)
    async with channel_of(10) as channel, Engine(cfg, transcriber=asr, embedder=emb, database=db) as engine:
        verdict = await first_verdict(engine, channel.feed_url, "store")
    assert verdict is not None, "no store verdict"
    assert "raise DB_WORKERS 1→2" in verdict.advice
