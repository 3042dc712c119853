"""Progress inside a long video: per-video counters, the snapshot, the audio ETA, the views, the stall."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from rich.console import Console

from tests.unit.test_diagnose import KNOBS, snap
from tests.unit.test_monitor_parts import pipeline_metrics
from ytingest.config import Settings
from ytingest.items import AudioFile, VideoRef
from ytingest.monitor.dashboard import _eta, render
from ytingest.monitor.diagnose import diagnose
from ytingest.monitor.gpu import GpuProbe
from ytingest.monitor.http import MetricsServer
from ytingest.monitor.monitor import Monitor
from ytingest.monitor.sampler import Sampler, Snapshot, VideoSample, eta_seconds
from ytingest.pipeline.counters import Metrics, ProgressCounters
from ytingest.pipeline.queues import StageQueue
from ytingest.stages.description import PIPELINE, inbox_for

NO_SYSTEM: Any = ((), 0.0, 0, 0)  # what Sampler.system() returns, without asking the machine


class Clock:
    """A stand-in for time.monotonic that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _wired(tmp_path: Path) -> tuple[Metrics, dict[str, StageQueue[Any]]]:
    """The real pipeline's counters, each stage fed by its real (audio-counting) queue."""
    m, settings = pipeline_metrics(tmp_path), Settings(ytingest_home=tmp_path)
    queues = {st.name: inbox_for(st, settings, size=0) for st in PIPELINE}
    for name, q in queues.items():
        m.stages[name].inbox = q
    return m, queues


def _in_model(*videos: tuple[str, float, float | None, float]) -> tuple[VideoSample, ...]:
    """(id, done, duration, idle) → the snapshot's rows."""
    return tuple(
        VideoSample(i, f"Episode {i}", done, dur, done / dur if dur else None, idle)
        for i, done, dur, idle in videos
    )


def test_progress_advance_is_monotonic_and_counts_audio_transcribed() -> None:
    """A smaller ``done`` changes nothing (not even ``updated``); a video never begun is ignored."""
    p = ProgressCounters()
    p.begin("v", "Episode v", 5400.0)
    p.advance("v", 300.0)
    first = p.videos["v"].updated
    p.advance("v", 120.0)
    assert p.videos["v"].done == 300.0 and p.videos["v"].updated == first
    p.advance("v", 900.0)
    p.advance("ghost", 50.0)
    assert p.videos["v"].done == 900.0 and "ghost" not in p.videos
    assert p.transcribed == 900.0 and p.audio_left == 4500.0
    p.end("v")
    assert p.transcribed == 900.0 and p.audio_left == 0.0


def test_the_model_stage_is_found_from_the_counters() -> None:
    """The stage the pipeline description flags ``model``, whatever its knob; none flagged: None."""
    m = pipeline_metrics(Path("/nonexistent"))
    assert m.model_stage is m.stages["asr"] and m.stages["asr"].model
    m.stages["asr"].model, m.stages["embed"].model = False, True
    assert m.model_stage is m.stages["embed"]
    m.stages["embed"].model = False
    assert m.model_stage is None  # not found by ASR_WORKERS any more


def test_snapshot_lists_the_videos_in_the_model_and_the_audio_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Videos sorted by start with done/length/idle; audio left = queues up to the model + the rest
    of its videos (nothing after it); JSON-safe."""
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    m, queues = _wired(tmp_path)
    sampler = Sampler(m, tmp_path, GpuProbe())
    ref = VideoRef("q1", "https://y/q1", "Queued", duration=1800.0)  # listed by discovery
    queues["download"].put_nowait(ref)
    queues["decode"].put_nowait(AudioFile(replace(ref, id="q2"), tmp_path / "q2", 1))
    after: StageQueue[float] = StageQueue(worth=float)  # audio past the model is not left to transcribe
    m.stages["embed"].inbox = after
    after.put_nowait(999.0)
    m.progress.begin("late", "Second", 5400.0)
    m.progress.begin("early", "First", None)
    m.progress.videos["late"].started = m.progress.videos["late"].updated = 990.0
    m.progress.videos["early"].started = m.progress.videos["early"].updated = 980.0
    clock.now = 1040.0
    m.progress.advance("late", 750.0)
    clock.now = 1100.0
    s = sampler.sample(NO_SYSTEM)
    assert [v.video_id for v in s.in_model] == ["early", "late"]
    early, late = s.in_model
    assert (late.title, late.done_s, late.duration_s, late.idle_s) == ("Second", 750.0, 5400.0, 60.0)
    assert late.fraction == pytest.approx(750 / 5400, abs=1e-4)
    assert early.fraction is None and early.idle_s == 120.0
    assert s.audio_left_s == 1800.0 + 1800.0 + (5400.0 - 750.0)
    assert [n for n, st in s.stages.items() if st.model] == ["asr"]
    doc = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    assert doc["in_model"][1] == {
        "video_id": "late",
        "title": "Second",
        "done_s": 750.0,
        "duration_s": 5400.0,
        "fraction": round(750 / 5400, 4),
        "idle_s": 60.0,
    }
    assert doc["audio_left_s"] == 8250.0 and doc["model_quiet_s"] == 60.0


def test_the_model_is_quiet_until_a_video_advances_or_the_stage_finishes_a_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quiet time runs from the latest advance, begin or stage completion, whichever is last."""
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    m, _ = _wired(tmp_path)
    sampler = Sampler(m, tmp_path, GpuProbe())
    m.progress.begin("v", "V", 5400.0)
    m.progress.videos["v"].updated = 1000.0
    clock.now = 1400.0
    assert sampler.sample(NO_SYSTEM).model_quiet_s == 400.0
    asr = m.stages["asr"]
    asr.end(asr.begin(), audio_seconds=300.0, items=0)  # a window of another video, none whole
    clock.now = 1410.0
    assert sampler.sample(NO_SYSTEM).model_quiet_s == 0.0  # seen at this sample
    clock.now = 1500.0
    assert sampler.sample(NO_SYSTEM).model_quiet_s == 90.0
    m.progress.advance("v", 60.0)
    clock.now = 1530.0
    assert sampler.sample(NO_SYSTEM).model_quiet_s == 30.0


def test_the_model_rate_counts_from_its_first_work_over_a_recent_horizon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No rate before the model advances; then audio-seconds per second since it had work; old
    samples leave the horizon; the ETA follows the audio, not the video count."""
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    m, _ = _wired(tmp_path)
    m.queued = 3
    sampler = Sampler(m, tmp_path, GpuProbe(), rate_horizon_s=100.0)
    clock.now += 500  # the first download takes a while: not the model's slowness
    assert sampler.sample(NO_SYSTEM).model_audio_s_per_s is None
    m.progress.begin("v", "V", 5400.0)
    clock.now += 100
    assert sampler.sample(NO_SYSTEM).model_audio_s_per_s is None  # working, nothing done yet
    clock.now += 10
    m.progress.advance("v", 300.0)
    s = sampler.sample(NO_SYSTEM)
    assert s.model_audio_s_per_s == 30.0
    assert s.eta_s == pytest.approx(5100.0 / 30.0)
    for _ in range(20):  # the model slows to 10 audio-s/s; the fast start leaves the horizon
        clock.now += 10
        m.progress.advance("v", m.progress.videos["v"].done + 100.0)
        s = sampler.sample(NO_SYSTEM)
    assert s.model_audio_s_per_s == pytest.approx(10.0)
    assert s.eta_s == pytest.approx((5400.0 - 2300.0) / 10.0)


def test_eta_by_audio_and_its_fallback_by_videos() -> None:
    """Audio left over the model's rate; the old video ETA until a rate is known; 0 when done."""
    assert eta_seconds(9000.0, 30.0, videos_left=2, videos_per_s=0.01) == 300.0
    assert eta_seconds(9000.0, None, videos_left=2, videos_per_s=0.01) == 200.0
    assert eta_seconds(0.0, 30.0, videos_left=2, videos_per_s=0.01) == 200.0  # no length known
    assert eta_seconds(0.0, None, videos_left=0, videos_per_s=0.01) == 0.0
    assert eta_seconds(9000.0, None, videos_left=2, videos_per_s=0.0) is None
    base = snap()  # queued 40, done 3, t 10 s: 37 videos at 0.3/s by the old rule
    by_audio = replace(base, audio_left_s=4 * 3600.0, model_audio_s_per_s=2.0)
    assert _eta(by_audio.to_dict()) == "2h00m"
    assert _eta(base.to_dict()) == "2m03s"
    legacy = base.to_dict()
    del legacy["eta_s"]  # a document from an older engine
    assert _eta(legacy) == "2m03s"


def _progress_doc() -> dict[str, Any]:
    videos = _in_model(("a1", 750.0, 5400.0, 4.0), ("b2", 120.0, None, 400.0))
    s = replace(snap(), in_model=videos, audio_left_s=9000.0, model_audio_s_per_s=30.0, model_quiet_s=4.0)
    return {"state": "running", "snapshot": s.to_dict(), "knobs": {}}


def test_the_dashboard_draws_a_progress_line_per_video_in_the_model() -> None:
    """``title  bar  12:30 / 1:30:00  14%``, unknown lengths as ``?``, a quiet video says so."""
    console = Console(width=200, record=True, color_system=None)
    console.print(render(_progress_doc()))
    screen = console.export_text()
    line = next(x for x in screen.splitlines() if "Episode a1" in x)
    assert "12:30 / 1:30:00" in line and "14%" in line and "━" in line
    other = next(x for x in screen.splitlines() if "Episode b2" in x)
    assert "2:00 / ?" in other and "no progress for 6m40s" in other
    assert "in the model (2)" in screen
    assert "ETA 5m00s (audio left 2:30:00 at 30.0× real time)" in screen


async def test_status_and_metrics_serve_the_progress_without_a_label_per_video(tmp_path: Path) -> None:
    """/metrics: audio left, videos in the model, the least progress; no video id; /status: the rows."""
    doc = _progress_doc()
    server = MetricsServer(lambda: doc)
    await server.start()
    try:
        base = f"http://{server.host}:{server.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
            async with http.get(f"{base}/status") as r:
                status = await r.json()
    finally:
        await server.stop()
    assert "ytingest_audio_left_seconds 9000.0" in text
    assert "ytingest_videos_in_model 2.0" in text
    assert f"ytingest_model_progress_min_fraction {750 / 5400}" in text
    assert "ytingest_model_audio_seconds_per_second 30.0" in text and "ytingest_eta_seconds 300.0" in text
    assert "a1" not in text and "b2" not in text
    assert [v["video_id"] for v in status["snapshot"]["in_model"]] == ["a1", "b2"]
    assert status["snapshot"]["eta_s"] == 300.0


def _stalling(quiet: float, *ids: str) -> Snapshot:
    videos = tuple(VideoSample(i, i, 600.0, 5400.0, 0.11, quiet) for i in ids)
    return replace(snap(), in_model=videos, model_quiet_s=quiet)


def test_a_stall_is_warned_once_and_re_armed_by_progress(tmp_path: Path) -> None:
    """No progress for MODEL_STALL_S with videos in the model: one ``model_stalled``; progress
    re-arms it; an empty model stage is never stalled."""
    monitor = Monitor(Sampler(pipeline_metrics(tmp_path), tmp_path, GpuProbe()), KNOBS, stall_s=300.0)
    sequence = [
        _stalling(299.0, "a"),
        _stalling(301.0, "a", "b"),
        _stalling(360.0, "a", "b"),
        _stalling(2.0, "a"),
        _stalling(310.0, "a"),
        replace(_stalling(900.0), in_model=()),
    ]
    with structlog.testing.capture_logs() as logs:
        for s in sequence:
            monitor._watch_stall(s)
    stalls = [e for e in logs if e["event"] == "model_stalled"]
    assert [[v["video_id"] for v in e["videos"]] for e in stalls] == [["a", "b"], ["a"]]
    assert stalls[0]["log_level"] == "warning" and stalls[0]["quiet_s"] == 301.0
    assert stalls[0]["videos"][0]["idle_s"] == 301.0
    assert [e["event"] for e in logs if e["event"] == "model_resumed"] == ["model_resumed"] * 2


def test_a_stall_is_the_verdict_before_any_bottleneck() -> None:
    """Stalled beats a backed-up stage; the advice says how long, what to look at, and that a
    restart loses nothing; a shorter quiet spell is no stall."""
    backed_up = snap({"asr": 2}, {"decode": 1.0, "asr": 1.0})
    assert diagnose([backed_up], KNOBS).stage == "asr"
    hung = replace(backed_up, in_model=_in_model(("a", 600.0, 5400.0, 360.0)), model_quiet_s=360.0)
    hung = replace(
        hung, stages={**hung.stages, "asr": replace(hung.stages["asr"], model=True, label="transcribe")}
    )
    v = diagnose([hung], KNOBS, stall_s=300.0)
    assert v.stage == "stalled" and v.evidence["in_model"] == ["a"] and v.evidence["model_quiet_s"] == 360.0
    assert "the model (transcribe) made no progress for 6 min" in v.advice
    assert "nvidia-smi" in v.advice and "restart the run" in v.advice
    assert diagnose([hung], KNOBS, stall_s=400.0).stage == "asr"
    console = Console(width=400, record=True, color_system=None)
    console.print(render({"snapshot": replace(hung, verdict=v.to_dict()).to_dict(), "knobs": {}}))
    assert "model: stalled" in console.export_text()


async def test_the_monitor_reports_a_hung_model_from_live_counters(tmp_path: Path) -> None:
    """End to end through ``tick``: a begun video that never advances becomes ``model_stalled``
    and, two samples on, the verdict; the stats line carries in_model, audio left and progress."""
    m, _ = _wired(tmp_path)
    monitor = Monitor(Sampler(m, tmp_path, GpuProbe()), KNOBS, stall_s=0.2, stats_every_s=0.0)
    m.progress.begin("hung", "Hung", 5400.0)
    m.progress.advance("hung", 600.0)
    with structlog.testing.capture_logs() as logs:
        first = await monitor.tick()
        await asyncio.sleep(0.3)
        await monitor.tick()
        last = await monitor.tick()
    assert first.verdict["stage"] != "stalled" and last.verdict["stage"] == "stalled"
    assert [e["videos"][0]["video_id"] for e in logs if e["event"] == "model_stalled"] == ["hung"]
    stats = [e for e in logs if e["event"] == "stats"][-1]
    assert stats["in_model"] == 1 and stats["audio_left_s"] == 4800
    assert stats["progress"] == [{"id": "hung", "fraction": round(600 / 5400, 3)}]
    json.dumps(stats)


def test_the_report_charts_the_audio_left_when_lengths_are_known(tmp_path: Path) -> None:
    """A fourth chart once any snapshot knows audio left; none without."""
    from ytingest.monitor.report import write_report

    history = [
        replace(snap(), t=float(i), audio_left_s=3600.0 - 100 * i, model_audio_s_per_s=100.0)
        for i in range(5)
    ]
    out = tmp_path / "run.html"
    write_report(history, out)
    assert out.read_text().count("<svg") == 4 and "audio left to transcribe" in out.read_text()
    write_report([snap()], out)
    assert out.read_text().count("<svg") == 3
