"""``build_monitor``: a run's monitor, autotuner and sampler, from the settings."""

from __future__ import annotations

from ytingest.config import Settings
from ytingest.monitor.autotune import AutoTuner
from ytingest.monitor.diagnose import Knobs
from ytingest.monitor.gpu import GpuProbe
from ytingest.monitor.monitor import Monitor
from ytingest.monitor.sampler import Sampler
from ytingest.pipeline.context import RunContext
from ytingest.stages.pause import SharedBackoff


def build_monitor(s: Settings, ctx: RunContext, backoff: SharedBackoff, gpu: GpuProbe) -> Monitor:
    """The monitor of one run: samples every MONITOR_INTERVAL_S, diagnoses, and tunes when AUTOTUNE."""
    tuner = None
    if s.autotune_enabled:
        io_max = max(s.io_workers, s.io_workers_max)
        counters = ctx.metrics.sized_by("IO_WORKERS")
        tuner = AutoTuner(ctx.tuning, backoff, counters, io_max=io_max, budget=ctx.budget)
    knobs = Knobs(
        s.io_workers,
        s.asr_workers,
        s.batch_size,
        s.db_workers,
        s.io_workers_max,
        s.asr_queue_size,
        s.decode_workers,
    )
    sampler = Sampler(ctx.metrics, s.audio_dir, gpu, budget=ctx.budget)
    return Monitor(
        sampler,
        knobs,
        interval_s=s.monitor_interval_s,
        window_s=s.diagnose_window_s,
        stats_every_s=s.stats_interval_s,
        tuner=tuner,
        stall_s=s.model_stall_s,
    )
