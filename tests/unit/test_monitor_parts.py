"""Monitor parts: the resizable limiter, autotune steps, verdict hysteresis, GPU fallback, report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from anyio import CapacityLimiter

from tests.unit.test_diagnose import KNOBS, snap
from ytingest.config import Settings
from ytingest.monitor.autotune import AutoTuner
from ytingest.monitor.diagnose import Verdict
from ytingest.monitor.gpu import GpuProbe
from ytingest.monitor.monitor import Monitor
from ytingest.monitor.report import write_report
from ytingest.monitor.sampler import Sampler
from ytingest.pipeline.counters import Metrics
from ytingest.pipeline.tuning import Tuning
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.pause import SharedBackoff


def pipeline_metrics(tmp_path: Path) -> Metrics:
    """Counters for the real pipeline description, one worker each."""
    return metrics_for(PIPELINE, Settings(ytingest_home=tmp_path, io_workers=1))


def tuning(io_workers: int, batch_size: int = 768) -> Tuning:
    return Tuning(CapacityLimiter(io_workers), batch_size, batch_size)


async def test_download_slots_resize_up_releases_waiters_and_down_holds_new_ones() -> None:
    """``Tuning.downloads`` as run_downloads uses it: a slot is taken on behalf of a token and given
    back from another task. Raising ``total_tokens`` lets a waiter in at once; lowering it keeps the
    slots held and stops new ones until fewer are held."""
    t = tuning(1)
    lim, first, second, third = t.downloads, object(), object(), object()
    await lim.acquire_on_behalf_of(first)
    waiter = asyncio.create_task(lim.acquire_on_behalf_of(second))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    lim.total_tokens = 2
    await asyncio.wait_for(waiter, 1)
    lim.total_tokens = 1
    assert (t.io_workers, lim.borrowed_tokens) == (1, 2)  # both keep their slots
    blocked = asyncio.create_task(lim.acquire_on_behalf_of(third))
    await asyncio.sleep(0.01)
    lim.release_on_behalf_of(first)  # 1 held, limit 1: the third still waits
    await asyncio.sleep(0.01)
    assert not blocked.done()
    await asyncio.create_task(_release(lim, second))  # released by a task that did not take it
    await asyncio.wait_for(blocked, 1)
    assert lim.borrowed_tokens == 1


async def _release(lim: CapacityLimiter, token: object) -> None:
    lim.release_on_behalf_of(token)


async def test_autotune_raises_io_workers_within_bounds_and_waits_between_changes() -> None:
    """A download verdict raises the limit (at most doubling, capped); cooldown skips steps."""
    t = tuning(2)
    tuner = AutoTuner(t, io_max=6, cooldown=1)
    verdict = Verdict("download", {}, "", "IO_WORKERS", 2, 25)
    with structlog.testing.capture_logs() as logs:
        await tuner.step(verdict)
        assert t.io_workers == 4
        await tuner.step(verdict)  # cooldown
        assert t.io_workers == 4
        await tuner.step(verdict)
        assert t.io_workers == 6  # capped by io_max
    tunes = [e for e in logs if e["event"] == "tune"]
    assert [(e["before"], e["after"]) for e in tunes] == [(2, 4), (4, 6)]
    assert all(e["knob"] == "IO_WORKERS" and e["reason"] for e in tunes)


async def test_autotune_halves_downloads_when_rate_limited() -> None:
    """A source verdict halves IO_WORKERS, never below the minimum."""
    t = tuning(8)
    tuner = AutoTuner(t, cooldown=0)
    for expected in (4, 2, 1, 1):
        await tuner.step(Verdict("source"))
        assert t.io_workers == expected


async def test_autotune_recovers_after_a_429_burst_by_aimd() -> None:
    """429 burst: halve on each source verdict; no climb while the shared pause runs; once it has
    cleared and downloads starve ASR again, one more download per step up to Little's-law bound."""
    t, pause = tuning(16), SharedBackoff(base_s=0.2, cap_s=0.2)
    tuner = AutoTuner(t, pause, io_max=64, cooldown=0)
    starve = Verdict("download", {}, "", "IO_WORKERS", 0, 10)  # Little's law: 10 in flight
    seen = [t.io_workers]
    for _ in range(2):  # the burst: two verdicts of 429s
        pause.trip(None)
        await tuner.step(Verdict("source"))
        seen.append(t.io_workers)
    await tuner.step(starve)  # the pause is still on: no climb yet
    seen.append(t.io_workers)
    await asyncio.sleep(pause.remaining + 0.01)  # the pause clears
    assert pause.remaining == 0
    for _ in range(8):  # a clean source again
        await tuner.step(starve)
        seen.append(t.io_workers)
    assert seen == [16, 8, 4, 4, 5, 6, 7, 8, 9, 10, 10, 10]


async def test_autotune_before_any_rate_limit_doubles_within_the_bound() -> None:
    """Slow start: doubling towards the suggestion, never past it."""
    t = tuning(2)
    tuner = AutoTuner(t, SharedBackoff(), cooldown=0)
    for _ in range(4):
        await tuner.step(Verdict("download", {}, "", "IO_WORKERS", 0, 11))
    assert t.io_workers == 11


def _monitor(tmp_path: Path) -> Monitor:
    sampler = Sampler(pipeline_metrics(tmp_path), tmp_path, GpuProbe())
    return Monitor(sampler, KNOBS)


def test_a_verdict_is_announced_only_after_two_samples(tmp_path: Path) -> None:
    """Hysteresis: one sample of a new verdict changes nothing; the second announces it once."""
    m = _monitor(tmp_path)
    with structlog.testing.capture_logs() as logs:
        m._judge(Verdict("store"))
        assert m.verdict.stage == "none"
        m._judge(Verdict("store", {"db_q": 7}, "raise DB_WORKERS 2→4"))
        m._judge(Verdict("store"))
    assert m.verdict.stage == "store"
    assert [e["stage"] for e in logs if e["event"] == "bottleneck"] == ["store"]


def test_without_a_gpu_nvml_degrades_to_cpu_metrics(tmp_path: Path) -> None:
    """NVML failing to start (no driver): no GPU samples, no error, CPU and RSS instead of SM and VRAM."""
    from unittest import mock

    import pynvml

    try:  # this machine: without a working driver the probe must take the CPU-only path
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        real = GpuProbe()
        assert not real.available and real.sample() == ()
        real.close()
    else:
        gpus = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
        real = GpuProbe()
        assert real.available == (gpus > 0) and len(real.sample()) == gpus
        real.close()

    no_driver = mock.Mock(side_effect=pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED))
    never = mock.Mock(side_effect=AssertionError("NVML used after nvmlInit failed"))
    calls = (
        "nvmlDeviceGetCount",
        "nvmlDeviceGetHandleByIndex",
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetName",
        "nvmlShutdown",
    )
    with mock.patch.multiple(pynvml, nvmlInit=no_driver, **dict.fromkeys(calls, never)):
        probe = GpuProbe()
        assert no_driver.called and not probe.available
        assert probe.sample() == ()
        sampler = Sampler(pipeline_metrics(tmp_path), tmp_path, probe)
        system = sampler.system()
        assert system[0] == ()
        s = sampler.sample(system)
        probe.close()  # no nvmlShutdown after a failed nvmlInit
    assert not never.called
    assert s.gpus == () and s.to_dict()["gpus"] == []
    assert s.rss_bytes > 0 and 0 <= s.cpu_percent <= 100
    line = s.queue_line()
    assert f"CPU={s.cpu_percent:.0f}%" in line and "SM=" not in line and "VRAM=" not in line


def test_report_draws_each_chart_and_lists_verdicts(tmp_path: Path) -> None:
    """The HTML report has the three charts and the verdict spans."""
    from dataclasses import replace

    history = [
        replace(
            snap({"download": 28 - i}, {"download": 1.0}),
            t=float(i),
            verdict={"stage": "download" if i < 5 else "none"},
        )
        for i in range(10)
    ]
    out = tmp_path / "run.html"
    write_report(history, out)
    page = out.read_text()
    stages = len(history[-1].stages)  # one line per stage in the queue and busy charts, one CPU line
    assert page.count("<svg") == 3 and page.count("<polyline") == stages + stages + 1
    assert "decode (decode_q)" in page and "decode busy" in page
    assert "<b>download</b> from 0s to 5s" in page


async def test_autotune_grows_embedding_batches_only_with_free_vram() -> None:
    """An embed verdict (it raises BATCH_SIZE) doubles ENCODE_BATCH_SIZE (BATCH_SIZE follows) when
    a GPU has under half its VRAM used; never on a CPU. Autotune reads the knob, not the stage."""
    t = tuning(2, batch_size=256)
    tuner = AutoTuner(t, cooldown=0)
    await tuner.step(Verdict("embed", {"vram": 0.35, "embed_busy": 0.95}, "", "BATCH_SIZE", 256, 512))
    assert (t.encode_batch_size, t.batch_size) == (512, 512)
    await tuner.step(Verdict("embed", {"vram": 0.8}, "", "BATCH_SIZE", 512, 1024))
    await tuner.step(Verdict("embed", {"cpu": 0.9}, "", "BATCH_SIZE", 512, 1024))  # no GPU: no change
    await tuner.step(Verdict("embed", {"vram": 0.35}))  # no knob to turn (not a real verdict): none
    assert (t.encode_batch_size, t.batch_size) == (512, 512)
