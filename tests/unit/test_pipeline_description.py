"""The pipeline description is the one place a stage is declared: engine, monitor and views follow it."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console

from tests.unit.fakes import FakeDiscoverer, refs
from tests.unit.test_engine_logic import make_engine
from ytingest.config import Settings
from ytingest.items import LabelledWindow
from ytingest.monitor.dashboard import render
from ytingest.monitor.diagnose import diagnose
from ytingest.monitor.http import SnapshotCollector
from ytingest.stages.description import PIPELINE, Parts, Stage, split_after

REPO = Path(__file__).resolve().parents[2]


async def _tidy(p: Parts, inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any] | None) -> None:
    """A dummy stage: holds each labelled window for a while, then hands it on unchanged."""
    assert outbox is not None
    counters = p.ctx.metrics.stages["tidy"]
    while (item := await inbox.get()) is not None:
        t0 = counters.begin()
        await asyncio.sleep(0.15)
        counters.end(t0, audio_seconds=item.result.seconds)
        await outbox.put(item)


def _with_tidy() -> tuple[Stage, ...]:
    """PIPELINE with a slow dummy stage between transcribe and embed (nothing else edited)."""
    tidy = Stage(
        name="tidy",
        label="tidy up",
        queue="tidy_q",
        queue_size=lambda s: 2,
        workers=lambda s: 1,
        work=_tidy,
        worth=lambda w: float(w.result.seconds) if isinstance(w, LabelledWindow) else 0.0,
        knob="TIDY_WORKERS",
    )
    names = [st.name for st in PIPELINE]
    at = names.index("embed")
    return (*PIPELINE[:at], tidy, *PIPELINE[at:])


async def test_a_stage_added_to_the_description_is_run_measured_diagnosed_and_drawn(tmp_path: Path) -> None:
    """A dummy stage in the description: the engine runs it, and it shows in the metrics, the
    diagnosis evidence (and verdict), /metrics and the dashboard, with no other file edited."""
    engine, p = make_engine(
        tmp_path,
        pipeline=_with_tidy(),
        discoverer=FakeDiscoverer(refs(16)),
        monitor_interval_s=0.05,
        diagnose_window_s=0.2,
        autotune=False,
    )
    async with engine:
        summary = await engine.stream("chan")
    assert summary.done == 16 and summary.failed == 0
    monitor = engine.monitor
    assert monitor is not None
    history = list(monitor.history)
    last = history[-1]
    assert list(last.stages) == ["download", "decode", "asr", "speakers", "tidy", "embed", "store"]
    assert last.stages["tidy"].done == 16 and last.stages["tidy"].queue == "tidy_q"
    assert last.stages["tidy"].label == "tidy up" and last.stages["tidy"].knob == "TIDY_WORKERS"
    busiest = max(history, key=lambda s: s.stages["tidy"].busy)
    assert busiest.stages["tidy"].busy > 0.5

    window = [s for s in history if s.stages["tidy"].depth == 2][:3]
    assert window, "the tidy queue never filled"
    window = [replace(s, stages={**s.stages, "tidy": replace(s.stages["tidy"], busy=1.0)}) for s in window]
    verdict = diagnose(window, monitor.knobs)
    assert "tidy_q" in verdict.evidence and "tidy_busy" in verdict.evidence
    assert (
        verdict.stage == "tidy"
        and verdict.knob == "TIDY_WORKERS"
        and "raise TIDY_WORKERS 1→2" in verdict.advice
    )

    status = {"state": "idle", "snapshot": busiest.to_dict(), "knobs": {}}
    screen = Console(record=True, width=160)
    screen.print(render(status))
    text = screen.export_text()
    assert "tidy up" in text and "tidy_q=" in text
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: status))
    scraped = generate_latest(registry).decode()
    assert 'ytingest_queue_depth{stage="tidy"}' in scraped
    assert 'ytingest_stage_busy_ratio{stage="tidy"}' in scraped


async def test_the_description_drives_metrics_for_every_stage_including_decode(tmp_path: Path) -> None:
    """Each stage of PIPELINE gets counters and its own queue in the snapshot, decode included."""
    engine, _ = make_engine(tmp_path, monitor_interval_s=0.05, autotune=False)
    async with engine:
        await engine.stream("chan")
    assert engine.monitor is not None and engine.monitor.latest is not None
    stages = engine.monitor.latest.stages
    assert list(stages) == [st.name for st in PIPELINE]
    assert [s.queue for s in stages.values()] == ["io_q", "decode_q", "asr_q", "spk_q", "embed_q", "db_q"]
    assert all(s.done == 10 for s in stages.values())


def test_bulk_mode_cuts_the_same_description_into_three_phases() -> None:
    """Bulk phases are slices of the description, so a new stage lands in one of them."""
    phases = split_after(_with_tidy(), "download", "speakers")
    assert [[st.name for st in phase] for phase in phases] == [
        ["download"],
        ["decode", "asr", "speakers"],
        ["tidy", "embed", "store"],
    ]


async def test_stop_ends_the_current_run_only(tmp_path: Path) -> None:
    """Engine.stop() stops the run under way; a later stream() on the same engine runs in full."""
    engine, p = make_engine(tmp_path, discoverer=FakeDiscoverer(refs(30), delay=0.02))
    async with engine:
        first = asyncio.create_task(engine.stream("chan"))
        await asyncio.sleep(0.1)
        engine.stop()
        stopped = await first
        engine.stop()  # no run under way: nothing to stop, and nothing carried over
        again = await engine.stream("chan", discoverer=FakeDiscoverer(refs(5, channel="x")))
    assert stopped.stopped_early and stopped.done < 30
    assert not again.stopped_early and again.done == 5


def test_env_example_copied_to_env_keeps_autotune_on(tmp_path: Path, monkeypatch: Any) -> None:
    """.env.example as a user's .env: every knob at its default, and autotune still on."""
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    settings = Settings()
    assert settings.autotune_enabled
    assert settings.io_workers == Settings.model_fields["io_workers"].default
