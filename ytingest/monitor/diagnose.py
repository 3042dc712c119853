"""Name the bottleneck from measured metrics, with evidence and advice that names a knob.

Pure functions over recent ``Snapshot``s, so every rule is testable without a pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ytingest.monitor.sampler import Snapshot

SATURATED = 0.85  # a stage busier than this is at its limit
STARVED = 0.6  # a stage less busy than this is waiting for work
BACKED_UP = 0.5  # an input queue fuller than this is piling up


@dataclass(frozen=True, slots=True)
class Knobs:
    io_workers: int
    asr_workers: int
    batch_size: int
    db_workers: int
    io_max: int = 64


@dataclass(frozen=True, slots=True)
class Verdict:
    stage: str  # download | source | asr | embed | store | disk | none
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: str = ""
    knob: str | None = None
    current: int | None = None
    suggested: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"stage": self.stage, "evidence": self.evidence, "advice": self.advice}
        if self.knob:
            d.update(knob=self.knob, current=self.current, suggested=self.suggested)
        return d


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evidence_of(window: Sequence[Snapshot]) -> dict[str, Any]:
    """Averages over the window: queue depths, busy fractions, GPU use, rate limits."""
    last = window[-1]
    ev: dict[str, Any] = {}
    for name, s in last.stages.items():
        ev[s.queue] = round(_mean([w.stages[name].depth for w in window]), 1)
    for name in last.stages:
        ev[f"{name}_busy"] = round(_mean([w.stages[name].busy for w in window]), 2)
    if last.gpus:
        ev["gpu_sm"] = round(_mean([max(g.sm for g in w.gpus) for w in window if w.gpus]), 2)
        ev["vram"] = round(max(g.vram_used / g.vram_total for g in last.gpus if g.vram_total), 2)
    else:
        ev["cpu"] = round(_mean([w.cpu_percent for w in window]) / 100, 2)
    ev["rate_limited"] = sum(w.rate_limited for w in window)
    return ev


def _fill(window: Sequence[Snapshot], stage: str) -> float:
    cap = window[-1].stages[stage].capacity
    return _mean([w.stages[stage].depth for w in window]) / cap if cap else 0.0


def downloads_needed(window: Sequence[Snapshot], knobs: Knobs) -> int:
    """Little's law: downloads in flight = ASR consumption rate × mean download time (+25%)."""
    last = window[-1]
    asr_latency = last.stages["asr"].latency_s
    download_time = last.stages["download"].latency_s
    if asr_latency <= 0 or download_time <= 0:
        return min(knobs.io_max, knobs.io_workers * 2)
    asr_rate = knobs.asr_workers / asr_latency  # videos/s ASR can take when never starved
    return max(knobs.io_workers + 1, min(knobs.io_max, math.ceil(1.25 * asr_rate * download_time)))


def diagnose(window: Sequence[Snapshot], knobs: Knobs) -> Verdict:
    """The current bottleneck over ``window`` (oldest first, at least one snapshot)."""
    ev = evidence_of(window)
    busy = {name: ev[f"{name}_busy"] for name in ("download", "asr", "embed", "store")}
    gpu_sm = ev.get("gpu_sm")
    if ev["rate_limited"]:
        return Verdict("source", ev, f"the site is rate-limiting ({ev['rate_limited']} × 429/throttled): "
                       f"keep IO_WORKERS at {knobs.io_workers} or lower; raising it makes this worse",
                       "IO_WORKERS", knobs.io_workers, max(1, knobs.io_workers // 2))  # fmt: skip
    if sum(w.disk_blocked for w in window) * 2 > len(window):
        return Verdict("disk", ev, "downloads wait for disk room: raise MAX_AUDIO_BYTES or free space "
                       "(MIN_FREE_BYTES); more IO_WORKERS would not help")  # fmt: skip
    if busy["store"] >= SATURATED and _fill(window, "store") >= BACKED_UP:
        n = knobs.db_workers
        return Verdict("store", ev, f"the database is the limit: raise DB_WORKERS {n}→{n * 2}",
                       "DB_WORKERS", n, n * 2)  # fmt: skip
    if busy["embed"] >= SATURATED and _fill(window, "embed") >= BACKED_UP:
        b = knobs.batch_size
        where = "" if gpu_sm is None else " (or move embedding to the GPU)"
        return Verdict("embed", ev, f"embedding is the limit: raise BATCH_SIZE {b}→{b * 2}{where}",
                       "BATCH_SIZE", b, b * 2)  # fmt: skip
    if busy["asr"] >= SATURATED and _fill(window, "asr") >= BACKED_UP:
        n = knobs.asr_workers
        if gpu_sm is not None and gpu_sm < 0.7:
            return Verdict("asr", ev, f"ASR is the limit and the GPU has room (SM {gpu_sm:.0%}): "
                           f"raise ASR_WORKERS {n}→{n + 1}", "ASR_WORKERS", n, n + 1)  # fmt: skip
        device = f"GPU (SM {gpu_sm:.0%})" if gpu_sm is not None else f"CPU ({ev.get('cpu', 0):.0%})"
        return Verdict("asr", ev, f"ASR is the limit and the {device} is busy: more ASR_WORKERS "
                       f"would not help; use a faster device or a smaller ASR_MODEL; "
                       f"IO_WORKERS above {knobs.io_workers} only fills the disk")  # fmt: skip
    waiting = window[-1].stages["download"].depth > 0 or not window[-1].discovery_done
    if busy["download"] >= SATURATED and busy["asr"] < STARVED and _fill(window, "asr") < 0.25 and waiting:
        n, m = knobs.io_workers, downloads_needed(window, knobs)
        return Verdict("download", ev, f"downloads starve ASR (ASR busy {busy['asr']:.0%}): "
                       f"raise IO_WORKERS {n}→{m}; more ASR_WORKERS would not help",
                       "IO_WORKERS", n, m)  # fmt: skip
    return Verdict("none", ev, "no stage is saturated" if any(b > 0.05 for b in busy.values()) else "idle")
