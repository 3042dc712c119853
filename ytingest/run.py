"""``RunContext``: what every stage of one ``Engine.stream`` call shares (settings, ledger, counters)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ytingest.config import Settings
from ytingest.items import EmbeddedTranscript, Failure, RunSummary, VideoRef
from ytingest.logs import get_logger
from ytingest.monitor.metrics import Metrics

log = get_logger()
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


class ModelTurns:
    """Who may call a model now: ASR calls may overlap each other (ASR_WORKERS); an embed call
    runs alone, and a waiting one goes before new ASR calls. On a CPU the two fight for the same
    cores: an encode beside a running ASR batch took 5x as long as alone. Stages count their busy
    time from inside their turn, so the wait is not busy time."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._asr = 0
        self._embedding = False
        self._embed_waiting = 0

    @contextlib.asynccontextmanager
    async def asr(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._embedding and self._embed_waiting == 0)
            self._asr += 1
        try:
            yield
        finally:
            self._asr -= 1
            await self._wake()

    @contextlib.asynccontextmanager
    async def embed(self) -> AsyncIterator[None]:
        async with self._cond:
            self._embed_waiting += 1
            try:
                await self._cond.wait_for(lambda: self._asr == 0 and not self._embedding)
            finally:
                self._embed_waiting -= 1
            self._embedding = True
        try:
            yield
        finally:
            self._embedding = False
            await self._wake()

    async def _wake(self) -> None:
        async with self._cond:
            self._cond.notify_all()


@dataclass
class RunContext:
    """Shared state of one run; its counts live in ``metrics``. Only the event loop thread touches it."""

    settings: Settings
    ledger: Ledger
    metrics: Metrics
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)
    turns: ModelTurns = field(default_factory=ModelTurns)
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
