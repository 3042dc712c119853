"""Act on verdicts: resize download concurrency within bounds; every change is a ``tune`` event."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from ytingest.monitor.diagnose import Verdict
from ytingest.monitor.metrics import StageCounters
from ytingest.stages.limiter import Limiter

log = structlog.get_logger("ytingest")


@dataclass
class AutoTuner:
    """Raises IO_WORKERS while downloads starve ASR, halves it when the site rate-limits.

    ``cooldown`` evaluations pass after each change so its effect shows in the metrics
    before the next one.
    """

    downloads: Limiter
    counters: StageCounters | None = None
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

    async def _set(self, before: int, after: int, reason: str, verdict: Verdict) -> None:
        if after == before:
            return
        await self.downloads.resize(after)
        if self.counters is not None:
            self.counters.workers = after
        self._wait = self.cooldown
        log.info("tune", knob="IO_WORKERS", before=before, after=after, reason=reason,
                 evidence=verdict.evidence)  # fmt: skip
