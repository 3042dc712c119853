"""Act on verdicts: resize download concurrency (AIMD) and the embedding batches; every change is
a ``tune`` event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ytingest.logs import get_logger
from ytingest.monitor.diagnose import Verdict
from ytingest.pipeline.budget import HourlyBudget
from ytingest.pipeline.counters import StageCounters
from ytingest.pipeline.tuning import Tuning, budget_io_cap

log = get_logger()


class Pause(Protocol):
    """The shared 429 pause (``stages.retry.SharedBackoff``): seconds until downloads may start."""

    @property
    def remaining(self) -> float: ...


@dataclass
class AutoTuner:
    """IO_WORKERS by AIMD, as TCP does with its window, and the embedding batch on a GPU. It acts
    on the knob a verdict names (each stage's knob is in the pipeline description), never on the
    stage's name.

    - A verdict that raises IO_WORKERS (downloads starve the rest): climb towards the Little's-law
      suggestion (never above it, nor above ``io_max``). Until the site has ever rate-limited us,
      each step may double (slow start); after that, one more download per step (additive
      increase).
    - ``source`` verdict (429s): halve (multiplicative decrease). No climb while the shared pause
      is still running.
    - A request budget (``budget``, DOWNLOAD_RATE_GLOBAL): never above ``budget_io_cap`` (Little's
      law on the mean download time so far; no climb before one is measured); on a ``budget``
      verdict, down to it: more downloads would only wait for their turn.
    - A verdict that raises BATCH_SIZE (embedding is the limit), on a GPU with VRAM to spare:
      double ENCODE_BATCH_SIZE (and BATCH_SIZE with it when the forward batch would outgrow the
      micro-batch).

    ``cooldown`` evaluations pass after each change, so its effect shows before the next one.
    """

    tuning: Tuning
    pause: Pause | None = None
    counters: StageCounters | None = None  # those of the stage IO_WORKERS sizes: it shows the new limit
    batch_max: int = 8192
    io_min: int = 1
    io_max: int = 64
    cooldown: int = 3
    rate_limited: bool = False  # the site has pushed back in this run: additive increase from now on
    budget: HourlyBudget | None = None  # the run's request budget: its rate caps IO_WORKERS
    _wait: int = 0

    async def step(self, verdict: Verdict) -> None:
        if self._wait > 0:
            self._wait -= 1
            return
        current = self.tuning.io_workers
        if verdict.stage == "source":
            self.rate_limited = True
            await self._set(current, max(self.io_min, current // 2), "site is rate-limiting: halve", verdict)
        elif verdict.knob == "IO_WORKERS" and verdict.suggested:
            if self.pause is not None and self.pause.remaining > 0:
                return  # the 429 pause is still on: downloads are not what limits us
            bound = min(self.io_max, verdict.suggested, self._budget_cap(current))
            step = current + 1 if self.rate_limited else current * 2
            reason = "downloads starve ASR: " + ("+1 after a rate limit" if self.rate_limited else "double")
            await self._set(current, max(current, min(bound, step)), reason, verdict)
        elif verdict.stage == "budget":
            cap = self._budget_cap(current)
            if cap < current:
                await self._set(
                    current, max(self.io_min, cap), "downloads wait on the budget: Little's law", verdict
                )
        elif verdict.knob == "BATCH_SIZE":
            self._grow_batch(verdict)

    def _budget_cap(self, current: int) -> int:
        """What the budget allows (``budget_io_cap``); ``current`` while the download time is unknown."""
        if self.budget is None:
            return self.io_max
        latencies = list(self.counters.latencies) if self.counters is not None else []
        mean_s = sum(latencies) / len(latencies) if latencies else 0.0
        cap = budget_io_cap(self.budget.per_hour, mean_s)
        return current if cap is None else cap

    def _grow_batch(self, verdict: Verdict) -> None:
        """Double ENCODE_BATCH_SIZE while embedding is the bottleneck and under half the VRAM is used.

        Only with a GPU: on a CPU bigger batches do not make encoding faster. A CUDA OOM halves
        it again (stages/embed.py), retrying the same rows.
        """
        vram = verdict.evidence.get("vram")
        t = self.tuning
        before = t.encode_batch_size
        if vram is None or vram >= 0.5 or before >= self.batch_max:
            return
        t.encode_batch_size = min(self.batch_max, before * 2)
        t.batch_size = max(t.batch_size, t.encode_batch_size)
        self._wait = self.cooldown
        reason = f"embedding is the limit and VRAM is {vram:.0%} used"
        log.info(
            "tune",
            knob="ENCODE_BATCH_SIZE",
            before=before,
            after=t.encode_batch_size,
            batch_size=t.batch_size,
            reason=reason,
            evidence=verdict.evidence,
        )

    async def _set(self, before: int, after: int, reason: str, verdict: Verdict) -> None:
        if after == before:
            return
        self.tuning.downloads.total_tokens = after  # running downloads keep their slots
        if self.counters is not None:
            self.counters.workers = after
        self._wait = self.cooldown
        log.info(
            "tune", knob="IO_WORKERS", before=before, after=after, reason=reason, evidence=verdict.evidence
        )
