"""Bottleneck rules on synthetic snapshots: each verdict names the right stage and knob."""

from __future__ import annotations

from ytingest.monitor.diagnose import Knobs, diagnose
from ytingest.monitor.gpu import GpuSample
from ytingest.monitor.sampler import Snapshot, StageSample
from ytingest.stages.description import PIPELINE

CAPS = {"download": 64, "decode": 4, "asr": 2, "speakers": 8, "embed": 8, "store": 8}
QUEUES = {
    "download": "io_q",
    "decode": "decode_q",
    "asr": "asr_q",
    "speakers": "spk_q",
    "embed": "embed_q",
    "store": "db_q",
}
KNOBS = Knobs(io_workers=12, asr_workers=4, batch_size=384, db_workers=2)
DESCRIBED = {st.name: st for st in PIPELINE}  # each stage's advice and model flag, as a run has them


def snap(
    depth: dict[str, int] | None = None,
    busy: dict[str, float] | None = None,
    *,
    latency: dict[str, float] | None = None,
    rate: dict[str, float] | None = None,
    gpu_sm: float | None = None,
    rate_limited: int = 0,
    discovery_done: bool = False,
    workers: int = 12,
    cpu: float = 40.0,
) -> Snapshot:
    """A snapshot of the six stages with the given queue depths, busy fractions and rates."""
    depth, busy, latency, rate = depth or {}, busy or {}, latency or {}, rate or {}
    stages = {
        n: StageSample(
            name=n,
            queue=QUEUES[n],
            depth=depth.get(n, 0),
            capacity=CAPS[n],
            workers=workers if n == "download" else 1,
            busy=busy.get(n, 0.0),
            items_per_s=rate.get(n, 0.0),
            audio_s_per_s=0.0,
            latency_s=latency.get(n, 0.0),
            done=0,
            errors=0,
            model=DESCRIBED[n].model,
            advice=DESCRIBED[n].advice,
        )
        for n in CAPS
    }
    gpus = () if gpu_sm is None else (GpuSample(0, "H100", gpu_sm, int(5.6 * 2**30), 16 * 2**30),)
    return Snapshot(
        t=10.0,
        stages=stages,
        download_bytes_per_s=0,
        active_downloads=0,
        rate_limited=rate_limited,
        gpus=gpus,
        cpu_percent=cpu,
        rss_bytes=0,
        audio_dir_bytes=0,
        queued=40,
        done=3,
        failed=0,
        skipped=0,
        discovery_done=discovery_done,
    )


def test_the_users_case_is_a_download_bottleneck_with_littles_law_advice() -> None:
    """io_q=28 asr_q=0 db_q=0 SM=22%: downloads starve the GPU; raise IO_WORKERS by Little's law."""
    s = snap(
        {"download": 28},
        {"download": 1.0, "asr": 0.18},
        gpu_sm=0.22,
        latency={"download": 40.0},
        rate={"asr": 0.09},
    )
    v = diagnose([s, s], KNOBS)
    assert v.stage == "download"
    # ASR did 0.09 videos/s while 18% busy: 0.5 videos/s when never starved; a download takes 40 s
    # → 20 in flight, +25% → 25
    assert (v.knob, v.current, v.suggested) == ("IO_WORKERS", 12, 25)
    assert "IO_WORKERS 12→25" in v.advice and "ASR_WORKERS would not help" in v.advice
    assert v.evidence["io_q"] == 28 and v.evidence["asr_busy"] == 0.18 and v.evidence["gpu_sm"] == 0.22


def test_slow_asr_with_idle_gpu_advises_more_asr_workers() -> None:
    """ASR saturated with its queue full and the GPU half idle: raise ASR_WORKERS."""
    s = snap({"asr": 2, "download": 10}, {"asr": 0.97, "download": 1.0}, gpu_sm=0.5)
    v = diagnose([s], KNOBS)
    assert v.stage == "asr" and "ASR_WORKERS 4→5" in v.advice


def test_slow_asr_on_a_busy_cpu_says_more_workers_would_not_help() -> None:
    """ASR saturated on a busy CPU: more ASR workers are not advised."""
    s = snap({"asr": 2}, {"asr": 0.95, "download": 0.3})
    v = diagnose([s], KNOBS)
    assert v.stage == "asr" and "would not help" in v.advice and v.knob is None


def test_slow_database_advises_more_db_workers() -> None:
    """Store busy with db_q backed up: raise DB_WORKERS."""
    s = snap({"store": 7, "asr": 4}, {"store": 1.0, "asr": 0.9})
    v = diagnose([s], KNOBS)
    assert v.stage == "store" and (v.knob, v.suggested) == ("DB_WORKERS", 4)


def test_slow_embedding_advises_bigger_batches() -> None:
    """Embedding busy with embed_q backed up: raise BATCH_SIZE."""
    s = snap({"embed": 6}, {"embed": 0.95})
    v = diagnose([s], KNOBS)
    assert v.stage == "embed" and "BATCH_SIZE 384→768" in v.advice


def test_rate_limiting_is_the_source_and_says_not_to_raise_io_workers() -> None:
    """429s in the window: the site is the limit; raising IO_WORKERS is advised against."""
    s = snap({"download": 28}, {"download": 1.0, "asr": 0.1}, rate_limited=2)
    v = diagnose([snap(), s], KNOBS)
    assert v.stage == "source" and "makes this worse" in v.advice and v.suggested == 6


def test_idle_or_balanced_pipeline_has_no_bottleneck() -> None:
    """Nothing busy, or everything moderately busy: verdict none."""
    assert diagnose([snap(discovery_done=True)], KNOBS).stage == "none"
    balanced = snap({"asr": 1}, {"download": 0.6, "asr": 0.7, "embed": 0.2, "store": 0.1})
    assert diagnose([balanced], KNOBS).stage == "none"


def test_download_is_not_blamed_once_nothing_is_left_to_download() -> None:
    """Busy downloads with an empty io_q after discovery ended are the tail, not a bottleneck."""
    s = snap({}, {"download": 1.0, "asr": 0.2}, discovery_done=True)
    assert diagnose([s], KNOBS).stage == "none"


def test_window_average_ignores_a_single_spike() -> None:
    """One saturated sample among idle ones does not make a verdict."""
    spike = snap({"store": 8}, {"store": 1.0})
    assert diagnose([snap(), snap(), snap(), spike], KNOBS).stage == "none"


def test_slow_decoder_is_named_decode_not_asr() -> None:
    """Downloaded files pile up before a saturated decoder while ASR starves: verdict decode."""
    s = snap({"decode": 4, "download": 20}, {"decode": 1.0, "asr": 0.3, "download": 0.9}, cpu=95.0)
    v = diagnose([s, s], KNOBS)
    assert v.stage == "decode"
    assert (
        "free core" in v.advice
        and "ASR_QUEUE_SIZE=2" in v.advice
        and "ASR_WORKERS would not help" in v.advice
    )
    assert v.evidence["decode_q"] == 4 and v.evidence["decode_busy"] == 1.0


def test_each_verdict_reads_the_queue_that_feeds_its_stage() -> None:
    """A full decode_q does not make ASR the bottleneck, and a full asr_q does not make decode one."""
    decode_backlog = snap({"decode": 4}, {"decode": 0.5, "asr": 1.0})
    assert diagnose([decode_backlog], KNOBS).stage == "none"
    asr_backlog = snap({"asr": 2}, {"decode": 1.0, "asr": 1.0})
    assert diagnose([asr_backlog], KNOBS).stage == "asr"


def test_download_verdict_waits_while_the_decoder_is_busy() -> None:
    """Downloads are not blamed while a later stage (the decoder) is saturated."""
    s = snap({"download": 28}, {"download": 1.0, "decode": 0.9, "asr": 0.2})
    assert diagnose([s], KNOBS).stage != "download"


def test_a_bot_check_storm_is_the_source_with_cookie_advice_on_the_dashboard() -> None:
    """Bot checks counted as rate limits: verdict source; advice and dashboard name cookies and pacing."""
    from dataclasses import replace

    from rich.console import Console

    from ytingest.monitor.dashboard import render
    from ytingest.ytdlp.failures import classify

    bot = "[youtube] x: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies"
    assert classify(bot).__class__.__name__ == "RateLimitedError"  # what the download stage counts
    storm = snap({"download": 20}, {"download": 1.0, "asr": 0.05}, rate_limited=9)
    v = diagnose([snap(), storm, storm], KNOBS)
    assert v.stage == "source" and v.knob == "IO_WORKERS" and v.suggested == 6
    for fix in (
        "--cookies FILE",
        "--cookies-from-browser",
        "--sleep-requests",
        "IO_WORKERS 12→6",
        "bot check",
    ):
        assert fix in v.advice, fix
    doc = {"snapshot": replace(storm, verdict=v.to_dict()).to_dict(), "knobs": {"io_workers": 12}}
    console = Console(width=400, record=True, color_system=None)
    console.print(render(doc))
    screen = console.export_text()
    assert "bottleneck: source" in screen and "--cookies FILE" in screen
