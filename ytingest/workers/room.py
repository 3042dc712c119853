"""``ClaimRoom``: how many videos a cluster worker claims, so claims spread over the workers.

A worker holds what its model is working on, plus what it can start soon: ``ahead`` videos on
their way to the model (claimed, downloading, downloaded or being decoded, no window in the
model yet). ``ahead`` starts at one and adapts, as autotune does with downloads:

- the model ran dry after it had worked, with nothing being decoded, while videos were still
  downloading: one more ahead (more downloads in flight), up to the downloads allowed plus the
  decode queue; then ``COOLDOWN`` observations pass before the next change, so one slow download
  is not a ramp (a model waiting for the decoder, at a video's start, is no reason either);
- a downloaded file waits for the decoder: one fewer (more would only wait here while another
  worker's model may be idle).

A video is never taken from another live worker: pgqueuer hands a claim on only when its
holder's heartbeat has stopped (``WORKER_LEASE_S``), and a long video's claim keeps beating
for as long as the video is in the pipeline. WORKER_CLAIMS stays the upper bound of all held.
"""

from __future__ import annotations

from dataclasses import dataclass

from ytingest.logs import get_logger

log = get_logger()
COOLDOWN = 10  # observations (about seconds) after a change of ``ahead`` before the next


@dataclass(frozen=True, slots=True)
class PipelineView:
    """What the worker's pipeline looks like now, as far as claiming is concerned."""

    taken: int  # jobs in hand: claimed and not yet finished
    started: int  # of them, videos whose first window has gone into the model
    model_idle: bool  # the model stage works on nothing and nothing waits in its queue
    model_worked: bool  # the model stage has finished something this run
    file_waiting: bool  # a downloaded file waits for the decoder
    decoding: bool  # a file is being decoded (or waits for the decoder)
    ahead_most: int  # downloads allowed now plus the decode queue's size

    @property
    def ahead(self) -> int:
        return max(0, self.taken - self.started)


@dataclass
class ClaimRoom:
    """The claim budget of one worker (see the module docstring)."""

    most: int  # WORKER_CLAIMS: never more held than this
    ahead: int = 1  # videos it may hold on their way to the model
    _wait: int = 0

    def has_room(self, view: PipelineView) -> bool:
        """Whether to claim one more video now."""
        return view.taken < self.most and view.ahead < min(self.ahead, max(1, view.ahead_most))

    def observe(self, view: PipelineView) -> None:
        """Adapt ``ahead`` to what the model needs (called every second or so)."""
        if self._wait > 0:
            self._wait -= 1
            return
        before, reason = self.ahead, ""
        starved = view.model_worked and view.model_idle and not view.decoding
        if starved and view.ahead > 0 and view.taken < self.most:
            self.ahead = min(max(1, view.ahead_most), self.ahead + 1)
            reason = "the model ran dry while videos were on their way"
        elif view.file_waiting:
            self.ahead = max(1, self.ahead - 1)
            reason = "a downloaded file waits for the decoder"
        if self.ahead != before:
            self._wait = COOLDOWN
            log.info("claims_ahead", before=before, after=self.ahead, reason=reason)
