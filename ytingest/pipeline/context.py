"""``RunContext``: what every stage of one ``Engine.stream`` call shares (settings, ledger, counters)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ytingest.config import Settings
from ytingest.items import Checkpoint, Failure, ResumePoint, RunSummary, VideoRef
from ytingest.logs import get_logger
from ytingest.pipeline.assembly import WindowAssembly
from ytingest.pipeline.budget import HourlyBudget
from ytingest.pipeline.counters import Metrics
from ytingest.pipeline.tuning import Tuning
from ytingest.pipeline.turns import ModelTurns
from ytingest.ports import RunStore

log = get_logger()


class Checkpoints(Protocol):
    """Where a run keeps its videos' finished windows (``stages/resume.py`` over the database)."""

    async def keep(self, windows: Sequence[tuple[str, Checkpoint]]) -> None: ...
    async def forget(self, video_ids: Sequence[str]) -> None: ...


async def _from_the_start(video_id: str) -> ResumePoint | None:
    """No checkpoints: every video is decoded from its start."""
    return None


@dataclass
class RunContext:
    """Shared state of one run; its counts live in ``metrics``. Only the event loop thread touches it."""

    settings: Settings
    ledger: RunStore
    metrics: Metrics
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)
    turns: ModelTurns = field(default_factory=ModelTurns)
    windows: WindowAssembly = field(default_factory=WindowAssembly)  # videos part-way through ASR
    model_errors_in_row: int = 0  # videos the model failed on since it last transcribed a window
    segments: int = 0
    failures: list[Failure] = field(default_factory=list)
    # videos a feed waits on (the cluster's claims): how each left the run (see ``settle``)
    outcomes: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    closed_with: str | None = None  # set by ``settle_all``: later videos leave with it at once
    halted: str = ""  # set by ``halt``: why the run stopped taking videos by itself
    tuning: Tuning = field(init=False)  # the knobs that change during the run, from settings
    budget: HourlyBudget | None = None  # a plain run's request budget (downloads and listings); None: none
    # where a video's decoding resumes (its windows already checkpointed); None: from the start
    resume_at: Callable[[str], Awaitable[ResumePoint | None]] = _from_the_start
    checkpoints: Checkpoints | None = None  # where finished windows are kept (None: nowhere)

    def __post_init__(self) -> None:
        self.tuning = Tuning.from_settings(self.settings)

    async def fail(self, ref: VideoRef, stage: str, reason: str, *, permanent: bool = False) -> None:
        """Record that ``ref`` failed in ``stage``; the run goes on."""
        reason = " ".join(reason.split())[:1000]
        self.failures.append(Failure(ref.id, stage, reason))
        self.metrics.failed += 1
        log.warning("video_failed", video_id=ref.id, stage=stage, reason=reason, permanent=permanent)
        await self.ledger.mark_failed(ref.id, stage, reason, permanent=permanent)
        self.settle(ref.id, "failed")

    def halt(self, reason: str) -> None:
        """Stop taking new videos because of ``reason`` (advice the CLI prints, exiting 1); the
        videos not started stay pending for the next run, those in flight are finished."""
        if not self.stopping.is_set():
            self.halted = reason
            log.error("run_halted", reason=reason)
            self.stopping.set()

    def expect(self, video_id: str) -> asyncio.Future[str]:
        """A future told how ``video_id`` leaves this run: stored, failed, waiting or released."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if self.closed_with is not None:
            future.set_result(self.closed_with)
        else:
            self.outcomes[video_id] = future
        return future

    def settle(self, video_id: str, outcome: str) -> None:
        """``video_id`` left the run: ``stored``, ``failed``, ``waiting`` (not yet available) or
        ``released`` (left pending: the run stopped first). Nothing when no feed waits on it."""
        future = self.outcomes.pop(video_id, None)
        if future is not None and not future.done():
            future.set_result(outcome)

    def settle_all(self, outcome: str) -> None:
        """Every video still awaited, and any awaited from now on, leaves with ``outcome`` (the run
        is ending)."""
        self.closed_with = self.closed_with or outcome
        for video_id in list(self.outcomes):
            self.settle(video_id, outcome)

    def summary(self) -> RunSummary:
        stored = self.metrics.through
        return RunSummary(
            done=stored.done,
            failed=len(self.failures),
            skipped=self.metrics.skipped,
            segments=self.segments,
            audio_seconds=stored.audio_seconds,
            wall_seconds=time.monotonic() - self.started,
            failures=tuple(self.failures),
            stopped_early=self.stopping.is_set(),
            asr_redecoded_chunks=self.metrics.asr_redecoded_chunks,
            halted=self.halted,
            audio_seconds_transcribed=model.audio_seconds if (model := self.metrics.model_stage) else 0.0,
        )


# what puts a run's videos on its first queue, then the end marker: a channel's listing for
# ``stream``, the job queue's claims for a cluster worker
Feed = Callable[[RunContext, "asyncio.Queue[Any]"], Coroutine[Any, Any, None]]
