"""Turn cumulative counters into a ``Snapshot`` of rates every interval."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ytingest.monitor.gpu import GpuProbe, GpuSample
from ytingest.pipeline.advice import Advice
from ytingest.pipeline.budget import BudgetSample, HourlyBudget
from ytingest.pipeline.counters import Metrics, StageCounters
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
    model: bool = False  # the stage that runs the model (``Snapshot.in_model`` is its videos)
    colour: str = ""  # the run page's and the report's colour (CSS)
    term_colour: str = ""  # the terminal dashboard's (Rich)
    advice: Advice | None = field(default=None, repr=False)  # not in ``to_dict``: code, not data

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "advice"}


@dataclass(frozen=True, slots=True)
class VideoSample:
    """One video inside the model stage: audio-seconds done out of its length."""

    video_id: str
    title: str
    done_s: float
    duration_s: float | None  # None: the length is not known
    fraction: float | None
    idle_s: float  # seconds since its progress last rose (or since it began)


def eta_seconds(
    audio_left_s: float, audio_rate: float | None, videos_left: int, videos_per_s: float
) -> float | None:
    """Seconds to the end of the run: the audio still to transcribe over the model's recent rate
    (audio-seconds per second); while no audio rate is known, the videos left over the run's
    average video rate. 0: nothing is left; None: no rate to go by yet."""
    if videos_left <= 0 and audio_left_s <= 0:
        return 0.0
    if audio_rate and audio_left_s > 0:
        return audio_left_s / audio_rate
    if videos_per_s > 0 and videos_left > 0:
        return videos_left / videos_per_s
    return None


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
    in_model: tuple[VideoSample, ...] = ()  # videos in the model stage, oldest first
    audio_left_s: float = 0.0  # audio still to transcribe: queued up to the model, and in it
    # audio waiting for the model: its decoded windows, and the rest of the videos downloading,
    # downloaded or being decoded (not the listed ones, nor what is in the model now)
    model_waiting_s: float = 0.0
    model_audio_s_per_s: float | None = None  # the model's recent rate (None: not measured yet)
    model_quiet_s: float = 0.0  # seconds since the model stage last made progress
    asr_redecoded_chunks: int = 0  # chunks whose uncovered tails were decoded again, so far
    budget: BudgetSample | None = None  # the run's request budget (None: unlimited, or a cluster's gate)

    @property
    def eta_s(self) -> float | None:
        """``eta_seconds`` for this snapshot; None while discovery has found nothing yet."""
        if not self.discovery_done and self.queued == 0:
            return None
        videos_rate = (self.done + self.failed) / self.t if self.t > 0 else 0.0
        left = self.queued - self.done - self.failed
        return eta_seconds(self.audio_left_s, self.model_audio_s_per_s, left, videos_rate)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stages"] = {k: v.to_dict() for k, v in self.stages.items()}
        d["gpus"] = [g.to_dict() for g in self.gpus]
        d["in_model"] = [asdict(v) for v in self.in_model]
        d["eta_s"] = self.eta_s
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


class _ModelRate:
    """The model's audio-seconds per second over the last ``horizon_s``, counted from when it
    first had work (a model waiting for its first download is not slow)."""

    def __init__(self, horizon_s: float) -> None:
        self.horizon_s = horizon_s
        self._points: deque[tuple[float, float]] = deque()
        self.moved_at = time.monotonic()  # when the model stage last finished something
        self._finished: tuple[int, float] = (0, 0.0)

    def add(self, at: float, model: StageCounters | None, transcribed: float, working: bool) -> None:
        finished = (model.done, model.audio_seconds) if model is not None else (0, 0.0)
        if finished != self._finished:
            self._finished, self.moved_at = finished, at
        if not (working or self._points):
            return
        self._points.append((at, transcribed))
        while len(self._points) > 2 and at - self._points[1][0] >= self.horizon_s:
            self._points.popleft()

    def rate(self) -> float | None:
        if len(self._points) < 2:
            return None
        (t0, a0), (t1, a1) = self._points[0], self._points[-1]
        return (a1 - a0) / (t1 - t0) if a1 > a0 and t1 > t0 else None


def model_waiting(m: Metrics, model: StageCounters | None) -> float:
    """Audio-seconds of the begun videos not yet handed to the model: its decoded windows plus
    the rest of each video still being decoded. Videos of unknown length count by their windows
    in the model's queue only."""
    if model is None:
        return 0.0
    queued = float(getattr(model.inbox, "audio_seconds", 0.0))
    rest = m.progress.audio_waiting
    return queued if rest is None else max(queued, rest)


class Sampler:
    """Samples ``Metrics`` plus CPU/RSS/GPU/disk. ``system()`` blocks briefly: call it in a thread.

    ``rate_horizon_s``: how far back the model's audio rate (the ETA's) is measured; long
    enough to span a few of its windows even on a CPU."""

    def __init__(
        self,
        metrics: Metrics,
        audio_dir: Path,
        gpu: GpuProbe,
        *,
        rate_horizon_s: float = 600.0,
        budget: HourlyBudget | None = None,
    ) -> None:
        self.metrics = metrics
        self.budget = budget
        self.audio_dir = audio_dir
        self.gpu = gpu
        self.started = time.monotonic()
        self._process = psutil.Process()
        psutil.cpu_percent(None)  # prime: the first call always returns 0
        self._last = self._totals()
        self._rate = _ModelRate(rate_horizon_s)

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
                model=c.model,
                colour=c.colour,
                term_colour=c.term_colour,
                advice=c.advice,
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
            asr_redecoded_chunks=m.asr_redecoded_chunks,
            budget=self.budget.sample() if self.budget is not None else None,
            **self._model_fields(now.at),
        )

    def _model_fields(self, at: float) -> dict[str, Any]:
        """The videos in the model stage, the audio left to transcribe, the model's rate and quiet time."""
        m, model = self.metrics, self.metrics.model_stage
        videos = sorted(m.progress.videos.values(), key=lambda v: (v.started, v.video_id))
        transcribed = max(m.progress.transcribed, model.audio_seconds if model else 0.0)
        self._rate.add(at, model, transcribed, bool(videos) or bool(model and model.busy))
        fetched = sum(m.download.audio.values())  # downloads in flight, or waiting for decode_q
        listed = downloaded = 0.0  # audio in the first queue (listed), and in the later ones
        for i, c in enumerate(m.stages.values() if model else ()):
            if c is model:  # its windows belong to videos already in ``progress`` (begun at decode)
                break
            audio = float(getattr(c.inbox, "audio_seconds", 0.0))
            listed, downloaded = (listed + audio, downloaded) if i == 0 else (listed, downloaded + audio)
        queued = fetched + listed + downloaded
        waiting = fetched + downloaded + model_waiting(m, model)
        moved = max([self._rate.moved_at] + [v.updated for v in videos])
        return {
            "in_model": tuple(
                VideoSample(
                    v.video_id,
                    v.title,
                    round(v.done, 1),
                    v.duration,
                    None if v.fraction is None else round(v.fraction, 4),
                    round(max(0.0, at - v.updated), 1),
                )
                for v in videos
            ),
            "audio_left_s": round(queued + m.progress.audio_left, 1),
            "model_waiting_s": round(waiting, 1),
            "model_audio_s_per_s": None if (rate := self._rate.rate()) is None else round(rate, 3),
            "model_quiet_s": round(max(0.0, at - moved), 1),
        }
