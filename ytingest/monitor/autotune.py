"""Act on verdicts: resize download concurrency within bounds; every change is a ``tune`` event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ytingest.logs import get_logger
from ytingest.monitor.diagnose import Verdict
from ytingest.monitor.metrics import StageCounters
from ytingest.stages.limiter import Limiter

log = get_logger()


@dataclass
class AutoTuner:
    """Raises IO_WORKERS while downloads starve ASR, halves it when the site rate-limits.

    ``cooldown`` evaluations pass after each change so its effect shows in the metrics
    before the next one.
    """

    downloads: Limiter
    counters: StageCounters | None = None
    embedder: Any = None  # has a mutable ``batch_size``: grown while embedding is the limit and VRAM is free
    batch_max: int = 8192
    io_min: int = 1
    io_max: int = 64
    cooldown: int = 3
    _wait: int = 0

    async def step(self, verdict: Verdict) -> None:
        if self._wait > 0:
            self._wait -= 1
            return
        current = self.downloads.limit
        if verdict.stage == "download" and verdict.suggested:
            target = min(self.io_max, max(current + 1, min(verdict.suggested, current * 2)))
            await self._set(current, target, "downloads starve ASR", verdict)
        elif verdict.stage == "source":
            await self._set(current, max(self.io_min, current // 2), "site is rate-limiting", verdict)
        elif verdict.stage == "embed" and self.embedder is not None:
            self._grow_batch(verdict)

    def _grow_batch(self, verdict: Verdict) -> None:
        """Double BATCH_SIZE while embedding is the bottleneck and under half the VRAM is used.

        Only with a GPU: on a CPU bigger batches do not make encoding faster. A CUDA OOM halves
        it again (stages/embed.py), retrying the same rows.
        """
        vram = verdict.evidence.get("vram")
        before = int(self.embedder.batch_size)
        if vram is None or vram >= 0.5 or before >= self.batch_max:
            return
        self.embedder.batch_size = min(self.batch_max, before * 2)
        self._wait = self.cooldown
        reason = f"embedding is the limit and VRAM is {vram:.0%} used"
        log.info("tune", knob="BATCH_SIZE", before=before, after=self.embedder.batch_size,
                 reason=reason, evidence=verdict.evidence)  # fmt: skip

    async def _set(self, before: int, after: int, reason: str, verdict: Verdict) -> None:
        if after == before:
            return
        await self.downloads.resize(after)
        if self.counters is not None:
            self.counters.workers = after
        self._wait = self.cooldown
        log.info("tune", knob="IO_WORKERS", before=before, after=after, reason=reason,
                 evidence=verdict.evidence)  # fmt: skip
