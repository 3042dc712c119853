"""The pipeline description is the one place a stage is declared: engine, monitor and views follow it."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console

from tests.unit.test_engine_logic import make_engine
from ytingest.config import Settings
from ytingest.items import LabelledWindow
from ytingest.monitor.dashboard import render
from ytingest.monitor.diagnose import diagnose
from ytingest.monitor.http import SnapshotCollector
from ytingest.monitor.report import write_report
from ytingest.pipeline.advice import Judged, Knobs, Verdict
from ytingest.pipeline.counters import StageCounters
from ytingest.stages.description import PIPELINE, Parts, Phase, Stage, phases
from ytingest.testing.fakes import FakeSource, refs

REPO = Path(__file__).resolve().parents[2]
UNTIDY = "v003"  # the video the dummy stage refuses


async def _tidy(
    p: Parts, counters: StageCounters, inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any] | None
) -> None:
    """A dummy stage: holds each labelled window for a while, then hands it on unchanged; it
    refuses one video, failing it in its own name (from the counters it is handed)."""
    assert outbox is not None
    while (item := await inbox.get()) is not None:
        t0 = counters.begin()
        await asyncio.sleep(0.15)
        video = item.file.video
        if video.id == UNTIDY:
            counters.end(t0, ok=False)
            if p.ctx.windows.drop(video.id):
                p.ctx.metrics.progress.end(video.id)
                await p.ctx.fail(video, counters.name, "too untidy")
            continue
        counters.end(t0, audio_seconds=item.result.seconds)
        await outbox.put(item)


def _advise_tidying(st: Judged, ev: dict[str, Any], knobs: Knobs, model: Judged | None) -> Verdict:
    """The dummy stage's own advice."""
    n = st.workers
    advice = f"tidying is the limit ({st.queue} backing up): raise TIDY_WORKERS {n}→{n + 1}"
    return Verdict(st.name, ev, advice, "TIDY_WORKERS", n, n + 1)


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
        phase=Phase.STORE,
        knob="TIDY_WORKERS",
        advice=_advise_tidying,
        colour="#2e8b57",
        term_colour="green4",
    )
    names = [st.name for st in PIPELINE]
    at = names.index("embed")
    return (*PIPELINE[:at], tidy, *PIPELINE[at:])


async def test_a_stage_added_to_the_description_is_run_measured_diagnosed_and_drawn(tmp_path: Path) -> None:
    """A dummy stage in the description: the engine runs it with its counters, its failure is
    recorded in its name, and it shows in the metrics, the diagnosis evidence (and its own advice),
    /metrics, the dashboard, the run page's document and the report (in its colour), with no
    other file edited."""
    engine, p = make_engine(
        tmp_path,
        pipeline=_with_tidy(),
        discoverer=FakeSource(refs(16)),
        monitor_interval_s=0.05,
        diagnose_window_s=0.2,
        autotune=False,
    )
    async with engine:
        summary = await engine.stream("chan")
    assert summary.done == 15 and [(f.video_id, f.stage) for f in summary.failures] == [(UNTIDY, "tidy")]
    monitor = engine.monitor
    assert monitor is not None
    history = list(monitor.history)
    last = history[-1]
    assert list(last.stages) == ["download", "decode", "asr", "speakers", "tidy", "embed", "store"]
    assert last.stages["tidy"].done == 15 and last.stages["tidy"].errors == 1
    assert last.stages["tidy"].queue == "tidy_q"
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
        and "tidying is the limit (tidy_q backing up): raise TIDY_WORKERS 1→2" in verdict.advice
    )

    status: dict[str, Any] = {
        "state": "idle",
        "snapshot": replace(busiest, verdict=verdict.to_dict()).to_dict(),
        "knobs": {},
    }
    assert status["snapshot"]["stages"]["tidy"]["colour"] == "#2e8b57"  # what the run page draws it in
    screen = Console(record=True, width=160, color_system="256", force_terminal=True)
    screen.print(render(status))
    text = screen.export_text(clear=False)
    assert "tidy up" in text and "tidy_q=" in text
    assert "\x1b[1;38;5;28mtidy" in screen.export_text(styles=True)  # the verdict, in green4
    report = tmp_path / "run.html"
    write_report([replace(s, verdict=verdict.to_dict()) for s in history], report)
    page = report.read_text()
    assert 'stroke="#2e8b57"' in page and 'fill="#2e8b57" opacity' in page  # its lines, its verdict
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
    """Bulk phases are slices of the description, so a new stage lands in the one it declares."""
    assert [[st.name for st in phase] for phase in phases(_with_tidy())] == [
        ["download"],
        ["decode", "asr", "speakers"],
        ["tidy", "embed", "store"],
    ]
    with pytest.raises(ValueError, match="bulk phases out of order"):
        phases((PIPELINE[1], PIPELINE[0]))  # decode before download: no three phases to run


async def test_stop_ends_the_current_run_only(tmp_path: Path) -> None:
    """Engine.stop() stops the run under way; a later stream() on the same engine runs in full."""
    engine, p = make_engine(tmp_path, discoverer=FakeSource(refs(30), delay=0.02))
    async with engine:
        first = asyncio.create_task(engine.stream("chan"))
        await asyncio.sleep(0.1)
        engine.stop()
        stopped = await first
        engine.stop()  # no run under way: nothing to stop, and nothing carried over
        again = await engine.stream("chan", discoverer=FakeSource(refs(5, channel="x")))
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
