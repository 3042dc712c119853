"""The monitor task: sample every interval, diagnose, autotune, log ``stats``, ``bottleneck`` and
``model_stalled``."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import replace

from ytingest.logs import get_logger
from ytingest.monitor.autotune import AutoTuner
from ytingest.monitor.diagnose import STALL_S, Knobs, Verdict, diagnose, is_stalled
from ytingest.monitor.sampler import Sampler, Snapshot

log = get_logger()


class Monitor:
    """Keeps the latest snapshot (for the dashboard and /status) and the run's history (for the report)."""

    def __init__(
        self,
        sampler: Sampler,
        knobs: Knobs,
        *,
        interval_s: float = 1.0,
        window_s: float = 5.0,
        stats_every_s: float = 10.0,
        tuner: AutoTuner | None = None,
        history: int = 3600,
        stall_s: float = STALL_S,
    ) -> None:
        self.sampler = sampler
        self.stall_s = stall_s  # MODEL_STALL_S
        self.knobs = knobs
        self.interval_s = interval_s
        self.tuner = tuner
        self.stats_every_s = stats_every_s
        self.window: deque[Snapshot] = deque(maxlen=max(1, round(window_s / interval_s)))
        self.history: deque[Snapshot] = deque(maxlen=history)
        self.latest: Snapshot | None = None
        self.verdict = Verdict("none")
        self._candidate = "none"
        self._last_stats = 0.0
        self._stalled = False  # a ``model_stalled`` warning is out for the current stall

    async def run(self, finished: asyncio.Event) -> None:
        """Sample until ``finished`` is set, then take one final sample."""
        while not finished.is_set():
            try:
                await asyncio.wait_for(finished.wait(), self.interval_s)
            except TimeoutError:
                pass
            await self.tick()

    async def tick(self) -> Snapshot:
        system = await asyncio.to_thread(self.sampler.system)
        snap = self.sampler.sample(system)
        if self.tuner is not None:
            t = self.tuner.tuning
            self.knobs = replace(self.knobs, io_workers=t.io_workers, batch_size=t.batch_size)
        self.window.append(snap)
        verdict = diagnose(list(self.window), self.knobs, stall_s=self.stall_s)
        self._watch_stall(snap)
        self._judge(verdict)
        snap = replace(snap, verdict=self.verdict.to_dict())
        self.latest = snap
        self.history.append(snap)
        if self.tuner is not None and verdict.stage == self.verdict.stage:
            await self.tuner.step(self.verdict)
        now = time.monotonic()
        if now - self._last_stats >= self.stats_every_s:
            self._last_stats = now
            log.info("stats", line=snap.queue_line(), **_stats_fields(snap))
        return snap

    def _judge(self, verdict: Verdict) -> None:
        """A new verdict must hold for two samples in a row before it is announced."""
        if verdict.stage == self.verdict.stage:
            self.verdict = verdict
            self._candidate = verdict.stage
            return
        if verdict.stage != self._candidate:
            self._candidate = verdict.stage
            return
        self.verdict = verdict
        log.info("bottleneck", stage=verdict.stage, evidence=verdict.evidence, advice=verdict.advice)

    def _watch_stall(self, snap: Snapshot) -> None:
        """Warn ``model_stalled`` once per stall; progress (or an empty model stage) re-arms it."""
        stalled = is_stalled(snap, self.stall_s)
        if stalled and not self._stalled:
            videos = [{"video_id": v.video_id, "idle_s": v.idle_s} for v in snap.in_model]
            log.warning("model_stalled", quiet_s=snap.model_quiet_s, stall_s=self.stall_s, videos=videos)
        elif self._stalled and not stalled:
            log.info("model_resumed", quiet_s=snap.model_quiet_s, in_model=len(snap.in_model))
        self._stalled = stalled


def _stats_fields(s: Snapshot) -> dict[str, object]:
    fields: dict[str, object] = {
        "done": s.done,
        "failed": s.failed,
        "queued": s.queued,
        "download_bytes_per_s": round(s.download_bytes_per_s),
        "rss_mb": round(s.rss_bytes / 2**20),
        "audio_dir_mb": round(s.audio_dir_bytes / 2**20, 1),
        "in_model": len(s.in_model),
        "audio_left_s": round(s.audio_left_s),
        "model_audio_s_per_s": s.model_audio_s_per_s,
        "eta_s": None if (eta := s.eta_s) is None else round(eta),
        "progress": [
            {"id": v.video_id, "fraction": v.fraction if v.fraction is None else round(v.fraction, 3)}
            for v in s.in_model
        ],
    }
    for name, st in s.stages.items():
        fields[f"{name}_busy"] = round(st.busy, 2)
        fields[f"{name}_per_s"] = round(st.items_per_s, 3)
    return fields
