"""Monitor parts: the resizable limiter, autotune steps, verdict hysteresis, GPU fallback, report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from tests.unit.test_diagnose import KNOBS, snap
from ytingest.monitor.autotune import AutoTuner
from ytingest.monitor.diagnose import Verdict
from ytingest.monitor.gpu import GpuProbe
from ytingest.monitor.metrics import Metrics
from ytingest.monitor.monitor import Monitor
from ytingest.monitor.report import write_report
from ytingest.monitor.sampler import Sampler
from ytingest.stages.limiter import Limiter


async def test_limiter_resize_up_releases_waiters_and_down_holds_new_ones() -> None:
    """Raising the limit lets waiting tasks in at once; lowering it stops new ones until below."""
    lim = Limiter(1)
    await lim.acquire()
    waiter = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await lim.resize(2)
    await asyncio.wait_for(waiter, 1)
    await lim.resize(1)
    await lim.release()  # 1 active, limit 1: a new acquire must wait
    blocked = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0.01)
    assert not blocked.done()
    await lim.release()
    await asyncio.wait_for(blocked, 1)
    assert lim.active == 1


async def test_autotune_raises_io_workers_within_bounds_and_waits_between_changes() -> None:
    """A download verdict raises the limit (at most doubling, capped); cooldown skips steps."""
    lim = Limiter(2)
    tuner = AutoTuner(lim, io_max=6, cooldown=1)
    verdict = Verdict("download", {}, "", "IO_WORKERS", 2, 25)
    with structlog.testing.capture_logs() as logs:
        await tuner.step(verdict)
        assert lim.limit == 4
        await tuner.step(verdict)  # cooldown
        assert lim.limit == 4
        await tuner.step(verdict)
        assert lim.limit == 6  # capped by io_max
    tunes = [e for e in logs if e["event"] == "tune"]
    assert [(e["before"], e["after"]) for e in tunes] == [(2, 4), (4, 6)]
    assert all(e["knob"] == "IO_WORKERS" and e["reason"] for e in tunes)


async def test_autotune_halves_downloads_when_rate_limited() -> None:
    """A source verdict halves IO_WORKERS, never below the minimum."""
    lim = Limiter(8)
    tuner = AutoTuner(lim, cooldown=0)
    for expected in (4, 2, 1, 1):
        await tuner.step(Verdict("source"))
        assert lim.limit == expected


def _monitor(tmp_path: Path) -> Monitor:
    sampler = Sampler(Metrics.for_workers(io=1, asr=1, store=1), tmp_path, GpuProbe())
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
    """No NVIDIA driver here: no GPU samples, no error, CPU and RSS still measured."""
    probe = GpuProbe()
    assert probe.sample() == () or probe.available
    sampler = Sampler(Metrics.for_workers(io=1, asr=1, store=1), tmp_path, probe)
    s = sampler.sample(sampler.system())
    assert s.rss_bytes > 0 and 0 <= s.cpu_percent <= 100
    assert "CPU=" in s.queue_line() or "SM=" in s.queue_line()
    probe.close()


def test_report_draws_each_chart_and_lists_verdicts(tmp_path: Path) -> None:
    """The HTML report has the three charts and the verdict spans."""
    from dataclasses import replace

    history = [replace(snap({"download": 28 - i}, {"download": 1.0}), t=float(i),
                       verdict={"stage": "download" if i < 5 else "none"}) for i in range(10)]  # fmt: skip
    out = tmp_path / "run.html"
    write_report(history, out)
    page = out.read_text()
    assert page.count("<svg") == 3 and page.count("<polyline") == 4 + 4 + 1
    assert "<b>download</b> from 0s to 5s" in page


async def test_autotune_grows_embedding_batches_only_with_free_vram() -> None:
    """An embed verdict doubles BATCH_SIZE when a GPU has under half its VRAM used; never on CPU."""

    class Emb:
        batch_size = 256

    emb = Emb()
    tuner = AutoTuner(Limiter(2), embedder=emb, cooldown=0)
    await tuner.step(Verdict("embed", {"vram": 0.35, "embed_busy": 0.95}))
    assert emb.batch_size == 512
    await tuner.step(Verdict("embed", {"vram": 0.8}))
    await tuner.step(Verdict("embed", {"cpu": 0.9}))  # no GPU: no change
    assert emb.batch_size == 512
