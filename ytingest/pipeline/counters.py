"""Counters the stages update (cheap, loop thread only); the monitor turns them into rates."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ytingest.pipeline.advice import Advice


@dataclass
class StageCounters:
    """One stage: its input queue, how many workers it may run, how many are busy, cumulative totals.

    ``label``, ``queue``, ``knob``, ``model``, the colours and the advice come from the pipeline
    description, so the monitor can show and advise on any stage without knowing it by name; the
    stage's workers are handed these counters, and name their failures by ``name``.
    """

    name: str
    workers: int
    queue: str = ""
    label: str = ""
    knob: str | None = None  # the setting that gives the stage more capacity
    inbox: asyncio.Queue[Any] | None = None  # the queue that feeds it (set when the run is wired)
    busy: int = 0
    done: int = 0
    errors: int = 0
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    _since: float = field(default_factory=time.monotonic)
    model: bool = False  # this stage runs the model whose per-video progress ``Metrics.progress`` holds
    colour: str = ""  # the run page's and the report's colour (CSS)
    term_colour: str = ""  # the terminal dashboard's (Rich)
    advice: Advice | None = None  # its bottleneck advice (None: the generic one for ``knob``)

    def _accrue(self) -> None:
        now = time.monotonic()
        self.busy_seconds += self.busy * (now - self._since)
        self._since = now

    def begin(self) -> float:
        """A worker starts an item; returns its start time for ``end``."""
        self._accrue()
        self.busy += 1
        return time.monotonic()

    def end(
        self, started: float, *, ok: bool = True, audio_seconds: float = 0.0, items: int = 1, errors: int = 0
    ) -> None:
        """A worker finished a call: ``items`` done (or, ``ok=False``, one error) plus ``errors`` failed."""
        self._accrue()
        self.busy -= 1
        self.latencies.append(time.monotonic() - started)
        self.errors += errors
        if ok:
            self.done += items
            self.audio_seconds += audio_seconds
        else:
            self.errors += 1

    def busy_seconds_now(self) -> float:
        self._accrue()
        return self.busy_seconds


@dataclass
class DownloadCounters:
    """Bytes as yt-dlp reports them, per video in flight, and rate-limit answers from the site."""

    bytes_total: int = 0
    in_flight: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    audio: dict[str, float] = field(default_factory=dict)  # listed seconds of each video downloading

    def progress(self, video_id: str, downloaded: int) -> None:
        before = self.in_flight.get(video_id, 0)
        if downloaded > before:
            self.bytes_total += downloaded - before
            self.in_flight[video_id] = downloaded

    def finished(self, video_id: str) -> None:
        self.in_flight.pop(video_id, None)


@dataclass
class VideoProgress:
    """One video inside the model stage: audio-seconds transcribed so far out of its length, and
    how far its windows have gone into the model (``reached``: transcribed or being transcribed)."""

    video_id: str
    title: str
    duration: float | None  # None: the length is not known yet
    done: float = 0.0
    reached: float = 0.0  # the end of the last window handed to the model
    entered: bool = False  # a window of it has gone into the model
    started: float = field(default_factory=time.monotonic)
    updated: float = field(default_factory=time.monotonic)  # when ``done`` last rose

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.duration) if self.duration else None

    @property
    def waiting(self) -> float | None:
        """Audio-seconds not yet in the model: its decoded windows and the rest of the video
        (None: the length is not known)."""
        if not self.duration:
            return None
        return max(0.0, self.duration - max(self.done, self.reached))


@dataclass
class ProgressCounters:
    """Videos in flight through decode and ASR, keyed by video id (loop thread only)."""

    videos: dict[str, VideoProgress] = field(default_factory=dict)
    transcribed: float = 0.0  # audio-seconds advanced in all, videos that ended included (monotonic)
    # told each video id whose first window goes into the model (the cluster's claims listen)
    on_reach: Callable[[str], None] | None = None

    def begin(self, video_id: str, title: str, duration: float | None) -> None:
        """A video's first window reached the model stage."""
        self.videos.setdefault(video_id, VideoProgress(video_id, title, duration))

    def advance(self, video_id: str, done: float, duration: float | None = None) -> None:
        """``done`` audio-seconds of the video are transcribed (monotonic: a smaller value is ignored)."""
        v = self.videos.get(video_id)
        if v is None:
            return
        if duration:
            v.duration = duration
        if done > v.done:
            self.transcribed += done - v.done
            v.done = done
            v.updated = time.monotonic()

    def reach(self, video_id: str, end: float) -> None:
        """The model takes the video's audio up to ``end`` seconds (``math.inf``: all of it)."""
        v = self.videos.get(video_id)
        if v is None:
            return
        v.reached = max(v.reached, min(end, v.duration) if v.duration else end)
        if not v.entered:
            v.entered = True
            if self.on_reach is not None:
                self.on_reach(video_id)

    def end(self, video_id: str) -> None:
        """The video left the model stage (transcribed or failed)."""
        self.videos.pop(video_id, None)

    @property
    def audio_left(self) -> float:
        """Audio-seconds still to transcribe in the videos in flight (known lengths only)."""
        return sum(max(0.0, (v.duration or 0.0) - v.done) for v in self.videos.values())

    @property
    def audio_waiting(self) -> float | None:
        """Audio-seconds of the videos in flight not yet handed to the model (None while no
        video's length is known)."""
        known = [w for v in self.videos.values() if (w := v.waiting) is not None]
        return sum(known) if known else None


@dataclass
class Metrics:
    """The one source of truth for a run: stage counters, queues, download bytes, run totals."""

    stages: dict[str, StageCounters]  # in pipeline order
    download: DownloadCounters = field(default_factory=DownloadCounters)
    progress: ProgressCounters = field(default_factory=ProgressCounters)
    queued: int = 0
    failed: int = 0
    skipped: int = 0
    discovery_done: bool = False
    asr_redecoded_chunks: int = 0  # chunks whose uncovered tails the model decoded again this run
    redecoded_base: int | None = None  # the transcriber's own count when the run began
    disk: Any = None  # the run's DiskBudget (its ``blocked`` flag feeds the disk verdict)

    @property
    def model_stage(self) -> StageCounters | None:
        """The stage that runs the model (flagged ``model`` by the pipeline description); None
        when the pipeline has none."""
        return next((s for s in self.stages.values() if s.model), None)

    def sized_by(self, knob: str) -> StageCounters | None:
        """The stage whose capacity ``knob`` sets (the autotuner shows a new IO_WORKERS on it)."""
        return next((s for s in self.stages.values() if s.knob == knob), None)

    @property
    def through(self) -> StageCounters:
        """The last stage's counters: what it finished went through the whole pipeline."""
        return list(self.stages.values())[-1]
