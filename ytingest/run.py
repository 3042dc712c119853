"""``RunContext``: what every stage of one ``Engine.stream`` call shares (settings, ledger, counters)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import structlog

from ytingest.config import Settings
from ytingest.items import EmbeddedTranscript, Failure, RunSummary, VideoRef
from ytingest.monitor.metrics import Metrics

log = structlog.get_logger("ytingest")
T = TypeVar("T")


class Ledger(Protocol):
    """The part of the database the pipeline writes to (``Database`` implements it)."""

    async def register_channel(self, url: str) -> None: ...
    async def skip_reason(self, video_id: str) -> str | None: ...
    async def register_video(self, ref: VideoRef) -> None: ...
    async def count_attempt(self, video_id: str) -> None: ...
    async def mark_failed(
        self, video_id: str, stage: str, reason: str, *, permanent: bool = False
    ) -> None: ...
    async def store_transcripts(
        self, items: Sequence[EmbeddedTranscript], *, asr_model: str, embed_model: str
    ) -> None: ...


@dataclass
class RunContext:
    """Shared state of one run; its counts live in ``metrics``. Only the event loop thread touches it."""

    settings: Settings
    ledger: Ledger
    metrics: Metrics
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)
    # One model call at a time (ASR or embed): on a CPU the two fight for the same cores, and the
    # embed ran 5x slower beside ASR than alone. The wait is outside the stage's busy time.
    model_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    segments: int = 0
    failures: list[Failure] = field(default_factory=list)

    async def fail(self, ref: VideoRef, stage: str, reason: str, *, permanent: bool = False) -> None:
        """Record that ``ref`` failed in ``stage``; the run goes on."""
        reason = " ".join(reason.split())[:1000]
        self.failures.append(Failure(ref.id, stage, reason))
        self.metrics.failed += 1
        log.warning("video_failed", video_id=ref.id, stage=stage, reason=reason, permanent=permanent)
        await self.ledger.mark_failed(ref.id, stage, reason, permanent=permanent)

    def summary(self) -> RunSummary:
        stored = self.metrics.stages["store"]
        return RunSummary(
            done=stored.done,
            failed=len(self.failures),
            skipped=self.metrics.skipped,
            segments=self.segments,
            audio_seconds=stored.audio_seconds,
            wall_seconds=time.monotonic() - self.started,
            failures=tuple(self.failures),
            stopped_early=self.stopping.is_set(),
        )


def take_waiting(inbox: asyncio.Queue[T | None], first: T, most: int) -> tuple[list[T], bool]:
    """``first`` plus the items already waiting in ``inbox`` (never waiting for more), at most
    ``most`` in all; and whether the end marker was among them."""
    group = [first]
    while len(group) < most and not inbox.empty():
        item = inbox.get_nowait()
        if item is None:
            return group, True
        group.append(item)
    return group, False


class Closing:
    """N workers share one input queue; the last one to see the end closes the next queue
    (or, for the last stage, sets ``finished``).

    ``None`` marks the end of a queue. A worker that reads it puts it back for its
    siblings, so every worker sees it exactly once.
    """

    def __init__(
        self, workers: int, downstream: asyncio.Queue[Any] | None, finished: asyncio.Event | None = None
    ) -> None:
        self._left = workers
        self._downstream = downstream
        self._finished = finished

    async def worker_done(self, upstream: asyncio.Queue[Any]) -> None:
        upstream.put_nowait(None)
        self._left -= 1
        if self._left > 0:
            return
        if self._downstream is not None:
            await self._downstream.put(None)
        if self._finished is not None:
            self._finished.set()
