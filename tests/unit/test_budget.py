"""The request budget of a plain run (DOWNLOAD_RATE_GLOBAL): pace, default, listings, autotune cap, views."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from anyio import CapacityLimiter

from tests.unit.test_diagnose import KNOBS, snap
from tests.unit.test_engine_logic import make_engine
from ytingest.config import Settings
from ytingest.items import VideoRef
from ytingest.monitor.autotune import AutoTuner
from ytingest.monitor.dashboard import render
from ytingest.monitor.diagnose import Verdict, diagnose
from ytingest.monitor.http import SnapshotCollector
from ytingest.pipeline.budget import BudgetSample, HourlyBudget, budget_rate, download_budget, is_youtube
from ytingest.pipeline.context import RunContext
from ytingest.pipeline.counters import StageCounters
from ytingest.pipeline.tuning import Tuning, budget_io_cap
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.discover import ListDiscoverer, Listing, run_discovery
from ytingest.testing.fakes import FakeDownloader, FakeSource, MemoryStore, refs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_turns_are_evenly_spaced_with_no_burst() -> None:
    """1,200/h: each turn 3 s after the one before, however many ask at once; an idle gap is not saved up."""
    clock = Clock()
    budget = HourlyBudget(1200, clock=clock)
    waits = [budget.reserve()[1] for _ in range(4)]
    assert waits == pytest.approx([0.0, 3.0, 6.0, 9.0])
    clock.now += 60  # idle for a minute: the next turn is now, the one after 3 s later (no burst)
    assert [budget.reserve()[1] for _ in range(2)] == pytest.approx([0.0, 3.0])


async def test_enter_paces_real_starts_and_a_stop_gives_the_turn_back() -> None:
    """``enter`` returns a pass at each turn (0.1 s apart at 36,000/h); a stop while waiting gives None."""
    budget, stop = HourlyBudget(36_000), asyncio.Event()
    times = []
    for _ in range(3):
        assert await budget.enter(stop) is not None
        times.append(time.monotonic())
    assert all(b - a >= 0.095 for a, b in zip(times, times[1:], strict=False))
    waiter = asyncio.create_task(budget.enter(stop))
    await asyncio.sleep(0.02)
    assert budget.sample().waiting == 1
    stop.set()
    assert await waiter is None
    assert budget.sample().waiting == 0 and budget.sample().downloads_last_hour == 3
    await budget.leave(True)


async def test_a_turn_that_comes_during_a_429_pause_waits_it_out() -> None:
    """``pause`` (a 429 seen by another download) holds the next turn until the pause is over."""
    budget, stop = HourlyBudget(36_000), asyncio.Event()
    assert await budget.enter(stop) is not None
    await budget.pause(0.3, "http-429")
    t0 = time.monotonic()
    assert await budget.enter(stop) is not None
    assert time.monotonic() - t0 >= 0.29
    assert budget.sample().downloads_last_hour == 2 and budget.sample().pauses == 1


def test_sample_counts_the_last_hour_and_the_next_turn() -> None:
    """The sample: rate, source, downloads and listing units of the last hour, seconds to the next turn."""
    clock = Clock()
    budget = HourlyBudget(250, source="YouTube default, signed out", clock=clock)
    budget.reserve("listing")
    clock.now += 20
    budget.reserve("download")
    s = budget.sample()
    assert (s.per_hour, s.source, s.downloads_last_hour, s.listing_last_hour) == (
        250,
        "YouTube default, signed out",
        1,
        1,
    )
    assert s.next_start_in_s == pytest.approx(14.4)
    clock.now += 3600 - 10  # the listing is over an hour old, the download not yet
    s = budget.sample()
    assert (s.downloads_last_hour, s.listing_last_hour, s.next_start_in_s) == (1, 0, 0.0)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/@chan",
        "https://youtube.com/playlist?list=PL1",
        "https://m.youtube.com/watch?v=x",
        "https://music.youtube.com/browse/UC1",
        "https://youtu.be/dQw4w9WgXcQ",
    ],
)
def test_youtube_urls_get_the_signed_out_default(url: str, tmp_path: Path) -> None:
    """Unset, a YouTube URL (youtube.com, its subdomains, youtu.be) gets 250 an hour."""
    assert is_youtube(url)
    assert budget_rate(Settings(ytingest_home=tmp_path), [url]) == (250, "YouTube default, signed out")


def test_cookies_raise_the_default_other_sites_have_none_and_an_explicit_rate_wins(tmp_path: Path) -> None:
    """Cookies: 1,500; another site: unlimited; DOWNLOAD_RATE_GLOBAL wins either way, 0 = unlimited."""
    yt, feed = ["https://www.youtube.com/@c"], ["http://127.0.0.1:8000/feed.xml"]
    home = {"ytingest_home": tmp_path}
    assert budget_rate(Settings(**home, cookies_file=tmp_path / "c.txt"), yt)[0] == 1500
    assert budget_rate(Settings(**home, cookies_from_browser="firefox"), yt)[0] == 1500
    assert budget_rate(Settings(**home), feed) == (0.0, "not YouTube")
    assert budget_rate(Settings(**home, download_rate_global=0), yt) == (0.0, "DOWNLOAD_RATE_GLOBAL")
    assert budget_rate(Settings(**home, download_rate_global=1200), feed) == (1200, "DOWNLOAD_RATE_GLOBAL")
    assert download_budget(Settings(**home), feed) is None
    assert Settings(**home).download_rate_global is None  # unset is not 0


def test_littles_law_caps_io_workers() -> None:
    """ceil(λ·W) + 1: 250/h with 30 s downloads is 4; unknown W (or no budget) is no cap."""
    assert budget_io_cap(250, 30.0) == 4
    assert budget_io_cap(3600, 10.0) == 11
    assert budget_io_cap(250, 0.0) is None and budget_io_cap(0, 30.0) is None


def _tuner(io: int, latency_s: float | None, per_hour: float = 250) -> AutoTuner:
    counters = StageCounters("download", io)
    if latency_s is not None:
        counters.latencies.extend([latency_s] * 4)
    return AutoTuner(
        Tuning(CapacityLimiter(io), 8, 8), None, counters, cooldown=0, budget=HourlyBudget(per_hour)
    )


async def test_autotune_never_climbs_past_the_budget() -> None:
    """A download verdict asking for 25 climbs only to ceil(λ·W)+1 (4 at 250/h, 30 s); no climb without W."""
    starve = Verdict("download", {}, "", "IO_WORKERS", 1, 25)
    tuner = _tuner(1, 30.0)
    for _ in range(4):
        await tuner.step(starve)
    assert tuner.tuning.io_workers == 4
    unmeasured = _tuner(2, None)
    await unmeasured.step(starve)
    assert unmeasured.tuning.io_workers == 2


async def test_a_budget_verdict_lowers_io_workers_to_what_the_budget_keeps_busy() -> None:
    """12 IO workers on 250/h with 30 s downloads: the budget verdict brings them down to 4."""
    tuner = _tuner(12, 30.0)
    with structlog.testing.capture_logs() as logs:
        await tuner.step(Verdict("budget", {}, "", "DOWNLOAD_RATE_GLOBAL", 250, None))
    assert tuner.tuning.io_workers == 4
    assert [(e["before"], e["after"]) for e in logs if e["event"] == "tune"] == [(12, 4)]


def _budgeted(waiting: int, **kw: Any) -> Any:
    sample = BudgetSample(250, "DOWNLOAD_RATE_GLOBAL", 10, 1, 12.0, waiting)
    return replace(snap(**kw), budget=sample)


def test_downloads_waiting_on_the_budget_name_the_budget_not_io_workers() -> None:
    """Consumers starved while downloads wait their turn: the verdict is the budget, not more IO_WORKERS."""
    s = _budgeted(9, depth={"download": 28}, busy={"download": 0.2, "asr": 0.1}, latency={"download": 30.0})
    v = diagnose([s, s, s], KNOBS)
    assert v.stage == "budget" and v.knob == "DOWNLOAD_RATE_GLOBAL" and v.suggested is None
    assert v.advice.startswith("download budget: 250/h (DOWNLOAD_RATE_GLOBAL)")
    assert "more IO_WORKERS would not help" in v.advice and "4 are enough" in v.advice


def test_the_download_advice_is_capped_by_the_budget() -> None:
    """Downloads saturated without waiters: Little's law on ASR asks 25, the budget allows 4 (< 12 now),
    so the budget is named; with a larger budget the suggestion is the budget's cap."""
    kw: dict[str, Any] = {
        "depth": {"download": 28},
        "busy": {"download": 1.0, "asr": 0.18},
        "latency": {"download": 40.0},
        "rate": {"asr": 0.09},
    }
    assert diagnose([_budgeted(0, **kw)] * 2, KNOBS).stage == "budget"
    roomy = replace(snap(**kw), budget=BudgetSample(1800, "DOWNLOAD_RATE_GLOBAL", 0, 0, 0.0, 0))
    v = diagnose([roomy, roomy], KNOBS)
    assert (v.stage, v.suggested) == ("download", 21)  # ceil(0.5/s · 40 s) + 1, under Little's 25 on ASR


def test_status_dashboard_and_metrics_show_the_budget() -> None:
    """The snapshot's ``budget`` (what /status serves) is drawn by the dashboard and exported to /metrics."""
    clock = Clock()
    budget = HourlyBudget(250, source="YouTube default, signed out", clock=clock)
    budget.reserve("listing")
    budget.reserve("download")
    doc = {"state": "running", "snapshot": replace(snap(), budget=budget.sample()).to_dict(), "knobs": {}}
    b = doc["snapshot"]["budget"]
    assert b == {
        "per_hour": 250,
        "source": "YouTube default, signed out",
        "downloads_last_hour": 0,  # booked for 14.4 s from now: not started yet
        "listing_last_hour": 1,
        "next_start_in_s": 28.8,
        "waiting": 0,
        "pauses": 0,
    }
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render(doc))
    text = console.export_text()
    assert "budget: 250/h (YouTube default, signed out)" in text and "next start in 29 s" in text
    families = {m.name: m for m in SnapshotCollector(lambda: doc).collect()}
    assert families["ytingest_budget_per_hour"].samples[0].value == 250
    used = {s.labels["kind"]: s.value for s in families["ytingest_budget_used_last_hour"].samples}
    assert used == {"download": 0, "listing": 1}
    assert families["ytingest_budget_next_start_seconds"].samples[0].value == 28.8


def _ctx(tmp_path: Path, budget: HourlyBudget | None) -> RunContext:
    s = Settings(ytingest_home=tmp_path, speakers=False)
    ctx = RunContext(s, MemoryStore(), metrics_for(PIPELINE, s))
    ctx.budget = budget
    return ctx


async def test_a_listing_takes_one_unit_and_one_per_hundred_entries(tmp_path: Path) -> None:
    """250 entries: a unit as the listing starts, one at entries 100 and 200; a retry's list takes none."""
    budget = HourlyBudget(360_000)
    ctx = _ctx(tmp_path, budget)
    out: asyncio.Queue[VideoRef | None] = asyncio.Queue()
    await run_discovery(ctx, FakeSource(refs(250)), "chan", out, Listing())
    assert budget.sample().listing_last_hour == 3
    again = HourlyBudget(360_000)
    await run_discovery(_ctx(tmp_path, again), ListDiscoverer(refs(5)), "ytingest:retry", asyncio.Queue())
    assert again.sample().listing_last_hour == 0


async def test_stream_paces_downloads_by_the_budget(tmp_path: Path) -> None:
    """DOWNLOAD_RATE_GLOBAL=36000 on a plain stream: download starts are ≥ 0.1 s apart."""
    started: list[float] = []

    class Timed(FakeDownloader):
        async def download(self, ref: VideoRef, dest: Path) -> Any:
            started.append(time.monotonic())
            return await super().download(ref, dest)

    engine, _ = make_engine(
        tmp_path, download_rate_global=36_000, discoverer=FakeSource(refs(4)), downloader=Timed()
    )
    with structlog.testing.capture_logs() as logs:
        async with engine:
            summary = await engine.stream("chan")
    assert summary.done == 4
    assert all(b - a >= 0.095 for a, b in zip(started, started[1:], strict=False))
    assert [e for e in logs if e["event"] == "download_budget"][0]["per_hour"] == 36_000
    assert engine.monitor is not None and engine.monitor.latest is not None
    assert engine.monitor.latest.budget is not None and engine.monitor.latest.budget.downloads_last_hour == 4


async def test_a_retry_of_youtube_videos_gets_the_youtube_default(tmp_path: Path) -> None:
    """``retry`` lists nothing: its budget is chosen by its videos' URLs (YouTube: 250/h)."""
    video = VideoRef("dQw4w9WgXcQ", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", title="t")
    engine, _ = make_engine(tmp_path)
    with structlog.testing.capture_logs() as logs:
        async with engine:
            summary = await engine.stream("ytingest:retry", discoverer=ListDiscoverer([video]))
    assert summary.done == 1
    event = [e for e in logs if e["event"] == "download_budget"][0]
    assert (event["per_hour"], event["source"]) == (250, "YouTube default, signed out")
