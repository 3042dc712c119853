"""Verdicts on one long video: the model's stage is judged by the audio waiting for it, not by
how many speech chunks sit in its queue (one video's windows never fill that queue)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from anyio import CapacityLimiter
from rich.console import Console

from tests.unit.test_diagnose import KNOBS, snap
from ytingest.config import Settings
from ytingest.items import VideoRef
from ytingest.monitor.autotune import AutoTuner
from ytingest.monitor.dashboard import render
from ytingest.monitor.diagnose import diagnose
from ytingest.monitor.gpu import GpuProbe
from ytingest.monitor.sampler import Sampler, Snapshot
from ytingest.pipeline.queues import StageQueue
from ytingest.pipeline.tuning import Tuning
from ytingest.stages.description import PIPELINE, metrics_for

MINUTES = 12
WINDOW_S = 60.0  # DECODE_WINDOW_S in the end-to-end twin of this test


def model_snap(waiting_s: float, *, asr_busy: float = 1.0, asr_depth: int = 3, **busy: float) -> Snapshot:
    """The real shape of one long video in flight: the model busy, a few speech chunks in asr_q
    (of 16), ``waiting_s`` of audio not yet in the model."""
    s = snap({"asr": asr_depth}, {"asr": asr_busy, **busy}, discovery_done=True)
    stages = {**s.stages, "asr": replace(s.stages["asr"], capacity=16, model=True)}
    return replace(s, stages=stages, model_waiting_s=waiting_s, queued=1, done=0)


def test_a_busy_model_with_audio_waiting_is_asr_though_its_queue_is_nearly_empty() -> None:
    """asr busy 100%, asr_q 3 of 16 chunks, 7 minutes of the video still to reach the model: asr."""
    s = model_snap(420.0)
    v = diagnose([s, s, s], KNOBS)
    assert v.stage == "asr"
    assert v.evidence["model_waiting_s"] == 420.0
    bare = model_snap(0.0)  # the same snapshot with nothing waiting: the old answer
    assert diagnose([bare, bare, bare], KNOBS).stage == "none"


def test_a_twelve_minute_video_is_asr_from_start_to_its_last_window() -> None:
    """Windows of 60 s go into the model one after another: every verdict while a window before
    the last is in the model is ``asr``, over the monitor's sliding window of snapshots."""
    duration, history, verdicts = MINUTES * 60.0, [], []
    windows = int(duration // WINDOW_S)
    for k in range(windows):  # window k is in the model: everything after it waits
        for _tick in range(4):
            history.append(model_snap(duration - (k + 1) * WINDOW_S))
            verdicts.append((k, diagnose(history[-5:], KNOBS).stage))
    before_last = [stage for k, stage in verdicts if k < windows - 1]
    assert before_last and set(before_last) == {"asr"}, verdicts


def test_a_decoder_bound_long_video_is_not_called_asr() -> None:
    """The decoder is the limit (model busy 40%) while most of the video waits: not asr."""
    s = model_snap(600.0, asr_busy=0.4, decode=1.0)
    assert diagnose([s, s, s], KNOBS).stage != "asr"


def test_audio_waiting_in_downloads_leaves_a_download_bottleneck_to_autotune() -> None:
    """Downloads starve the model (busy 20%) though their audio counts as waiting: the verdict
    stays ``download``, and autotune still raises IO_WORKERS; an asr verdict moves no knob."""
    s = model_snap(900.0, asr_busy=0.2, asr_depth=0, download=1.0)
    s = replace(s, stages={**s.stages, "download": replace(s.stages["download"], depth=6)})
    v = diagnose([s, s, s], KNOBS)
    assert v.stage == "download" and v.knob == "IO_WORKERS"

    async def steps() -> tuple[int, int]:
        t = Tuning(CapacityLimiter(KNOBS.io_workers), 768, 768)
        tuner = AutoTuner(t, cooldown=0)
        await tuner.step(diagnose([model_snap(900.0)] * 3, KNOBS))
        after_asr = t.io_workers
        await tuner.step(v)
        return after_asr, t.io_workers

    after_asr, after_download = asyncio.run(steps())
    assert after_asr == KNOBS.io_workers < after_download


def test_the_sampler_counts_decoded_windows_and_the_rest_of_the_video_not_listed_ones(
    tmp_path: Path,
) -> None:
    """model_waiting_s = what is not yet in the model of the begun video (12 min, 5 in) plus
    downloaded files; a listed video in io_q and the window in the model are not waiting."""
    metrics = metrics_for(PIPELINE, Settings(ytingest_home=tmp_path, io_workers=1))
    io_q: StageQueue[VideoRef] = StageQueue(8, worth=lambda r: r.duration or 0.0)
    io_q.put_nowait(VideoRef("listed", "https://x/listed", "listed", duration=3600.0))
    decode_q: StageQueue[float] = StageQueue(4, worth=lambda seconds: seconds)
    decode_q.put_nowait(240.0)  # a downloaded 4-minute file
    metrics.stages["download"].inbox, metrics.stages["decode"].inbox = io_q, decode_q
    metrics.stages["asr"].inbox = StageQueue(16)
    progress = metrics.progress
    progress.begin("long", "a long one", MINUTES * 60.0)
    progress.reach("long", 300.0)  # windows up to 5:00 are in the model (or done)
    sampler = Sampler(metrics, tmp_path, GpuProbe())
    snap_ = sampler.sample(((), 0.0, 0, 0))
    assert snap_.model_waiting_s == MINUTES * 60.0 - 300.0 + 240.0
    assert snap_.audio_left_s >= snap_.model_waiting_s + 3600.0  # the ETA still counts the listing
    progress.advance("long", 300.0)
    progress.reach("long", MINUTES * 60.0)  # the last window went into the model
    assert sampler.sample(((), 0.0, 0, 0)).model_waiting_s == 240.0


def test_the_first_window_into_the_model_is_told_once() -> None:
    """``on_reach`` hears each video once, when its first window goes into the model."""
    heard: list[str] = []
    metrics = metrics_for(PIPELINE, Settings())
    metrics.progress.on_reach = heard.append
    metrics.progress.begin("a", "A", 600.0)
    metrics.progress.reach("a", 300.0)
    metrics.progress.reach("a", 600.0)
    metrics.progress.reach("unknown", 10.0)
    assert heard == ["a"]
    assert metrics.progress.videos["a"].waiting == 0.0


def test_the_dashboard_says_how_much_audio_waits_for_the_model() -> None:
    """Next to the verdict the user sees why: ``7:00 waiting for the model``."""
    s = replace(model_snap(420.0), audio_left_s=600.0, model_audio_s_per_s=5.0)
    console = Console(width=200, record=True, color_system=None)
    console.print(render({"state": "running", "snapshot": s.to_dict(), "knobs": {}}))
    assert "(audio left 10:00, 7:00 waiting for the model at 5.0× real time)" in console.export_text()


def test_the_end_marker_is_not_counted_as_a_video_waiting() -> None:
    """After the listing ends, io_q holds only the end marker: the monitor reads 0 there, so
    nothing is taken for a video still waiting for a download."""
    q: StageQueue[VideoRef] = StageQueue(4, worth=lambda r: r.duration or 0.0)
    q.put_nowait(VideoRef("a", "https://x/a", duration=60.0))
    q.put_nowait(None)
    assert q.qsize() == 1 and q.audio_seconds == 60.0
    assert q.get_nowait() is not None and q.qsize() == 0 and not q.empty()
    assert q.get_nowait() is None and q.qsize() == 0 and q.empty()
