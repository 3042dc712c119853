"""Turn cumulative counters into a ``Snapshot`` of rates every interval."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ytingest.monitor.gpu import GpuProbe, GpuSample
from ytingest.pipeline.counters import Metrics
from ytingest.stages.disk import folder_bytes


@dataclass(frozen=True, slots=True)
class StageSample:
    name: str
    queue: str  # the queue that feeds this stage
    depth: int
    capacity: int
    workers: int
    busy: float  # fraction of worker-time busy over the last interval, 0..1
    items_per_s: float
    audio_s_per_s: float
    latency_s: float  # mean over the last items
    done: int
    errors: int
    label: str = ""
    knob: str | None = None  # the setting that gives the stage more capacity
    queued_audio_s: float = 0.0  # audio-seconds waiting in its queue


@dataclass(frozen=True, slots=True)
class Snapshot:
    t: float  # seconds since the run started
    stages: dict[str, StageSample]
    download_bytes_per_s: float
    active_downloads: int
    rate_limited: int  # rate-limit answers during the last interval
    gpus: tuple[GpuSample, ...]
    cpu_percent: float
    rss_bytes: int
    audio_dir_bytes: int
    queued: int
    done: int
    failed: int
    skipped: int
    discovery_done: bool
    disk_blocked: bool = False
    verdict: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stages"] = {k: asdict(v) for k, v in self.stages.items()}
        d["gpus"] = [g.to_dict() for g in self.gpus]
        return d

    def queue_line(self) -> str:
        """The user's one-liner: ``io_q=28 asr_q=0 db_q=0 SM=22% VRAM=35%`` (or CPU=..%)."""
        parts = [f"{s.queue}={s.depth}" for s in self.stages.values()]
        if self.gpus:
            sm = max(g.sm for g in self.gpus)
            vram = max(g.vram_used / g.vram_total for g in self.gpus if g.vram_total)
            parts += [f"SM={sm:.0%}", f"VRAM={vram:.0%}"]
        else:
            parts.append(f"CPU={self.cpu_percent:.0f}%")
        return "  ".join(parts)


@dataclass
class _Totals:
    at: float
    busy_seconds: dict[str, float]
    done: dict[str, int]
    audio: dict[str, float]
    bytes_total: int
    rate_limited: int


class Sampler:
    """Samples ``Metrics`` plus CPU/RSS/GPU/disk. ``system()`` blocks briefly: call it in a thread."""

    def __init__(self, metrics: Metrics, audio_dir: Path, gpu: GpuProbe) -> None:
        self.metrics = metrics
        self.audio_dir = audio_dir
        self.gpu = gpu
        self.started = time.monotonic()
        self._process = psutil.Process()
        psutil.cpu_percent(None)  # prime: the first call always returns 0
        self._last = self._totals()

    def _totals(self) -> _Totals:
        m = self.metrics
        return _Totals(
            at=time.monotonic(),
            busy_seconds={n: s.busy_seconds_now() for n, s in m.stages.items()},
            done={n: s.done for n, s in m.stages.items()},
            audio={n: s.audio_seconds for n, s in m.stages.items()},
            bytes_total=m.download.bytes_total,
            rate_limited=m.download.rate_limited,
        )

    def system(self) -> tuple[tuple[GpuSample, ...], float, int, int]:
        """GPU samples, system CPU %, our RSS, bytes in the audio folder."""
        audio = folder_bytes(self.audio_dir)
        return self.gpu.sample(), psutil.cpu_percent(None), self._process.memory_info().rss, audio

    def sample(self, system: tuple[tuple[GpuSample, ...], float, int, int]) -> Snapshot:
        """Rates since the previous call."""
        m, prev, now = self.metrics, self._last, self._totals()
        dt = max(now.at - prev.at, 1e-6)
        stages = {}
        for name, c in m.stages.items():
            q = c.inbox
            busy = (now.busy_seconds[name] - prev.busy_seconds[name]) / (dt * max(c.workers, 1))
            lat = list(c.latencies)
            stages[name] = StageSample(
                name=name,
                queue=c.queue,
                depth=q.qsize() if q else 0,
                capacity=q.maxsize if q else 0,
                workers=c.workers,
                busy=min(1.0, max(0.0, busy)),
                items_per_s=(now.done[name] - prev.done[name]) / dt,
                audio_s_per_s=(now.audio[name] - prev.audio[name]) / dt,
                latency_s=sum(lat) / len(lat) if lat else 0.0,
                done=c.done,
                errors=c.errors,
                label=c.label or name,
                knob=c.knob,
                queued_audio_s=round(float(getattr(q, "audio_seconds", 0.0)), 1),
            )
        self._last = now
        gpus, cpu, rss, audio = system
        return Snapshot(
            t=now.at - self.started,
            stages=stages,
            download_bytes_per_s=(now.bytes_total - prev.bytes_total) / dt,
            active_downloads=len(m.download.in_flight),
            rate_limited=now.rate_limited - prev.rate_limited,
            gpus=gpus,
            cpu_percent=cpu,
            rss_bytes=rss,
            audio_dir_bytes=audio,
            queued=m.queued,
            done=m.through.done,
            failed=m.failed,
            skipped=m.skipped,
            discovery_done=m.discovery_done,
            disk_blocked=bool(m.disk is not None and m.disk.blocked),
        )
