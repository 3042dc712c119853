"""The shared pause after a rate limit, and the slow start after it; per-video backoff delays."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

SLOW_START_PROBE_S = 5.0  # a download let in after a pause that runs this long without a 429 proves
OPEN_AT = 16  # the slow-start window at which every waiting download may start again


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when it was (the run is stopping)."""
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await stop.wait()
    except TimeoutError:
        return stop.is_set()
    return True


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter in its upper half: base·2^(n-1), at most ``cap``."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


@dataclass(eq=False)
class Ticket:
    """One download let in by ``SharedBackoff.enter``: the pause it started under (``epoch``), and,
    when let in by the slow start (``trial``), the timer that proves it ``probe_s`` after ``begin``."""

    epoch: int
    trial: bool = False
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class SharedBackoff:
    """One pause for every new download after the site rate-limits us (not N workers hammering it),
    then a slow start: one download at a time, doubling, as TCP does after a loss.

    - ``trip`` starts a pause: Retry-After when the site sent one, else exponential in the pauses
      in a row (``strikes``), at least the message's own ``pause_s``, at most ``cap_s``. A 429 from
      a download that started before the current pause (``ticket.epoch``) is an echo of it: it
      neither lengthens the pause nor counts as a strike (six downloads in flight are one 429).
    - ``enter`` waits out the pause, then lets downloads in: one, and one more each time a download
      let in proves the site answers again (it succeeds, or runs ``probe_s`` with no new pause),
      which doubles the number running per round, until ``OPEN_AT``; then all may start.
    - ``bot_checks``: pauses in a row that a bot check or captcha started; a success resets it and
      ``strikes`` (the download stage stops the run at BOT_CHECK_LIMIT).
    """

    def __init__(
        self, base_s: float = 5.0, cap_s: float = 3600.0, *, probe_s: float = SLOW_START_PROBE_S
    ) -> None:
        self.base_s, self.cap_s, self.probe_s = base_s, cap_s, probe_s
        self.strikes = 0
        self.bot_checks = 0
        self.epoch = 0  # pauses so far
        self.window: int | None = None  # slow start: downloads that may be on trial at once; None: open
        self._until = 0.0
        self._trial: set[Ticket] = set()
        self._changed = asyncio.Event()

    def trip(
        self,
        retry_after: float | None,
        *,
        ticket: Ticket | None = None,
        bot_check: bool = False,
        pause_s: float = 0.0,
    ) -> float:
        """A rate limit: the pause it starts (seconds), or what is left of the current one when
        ``ticket`` started before it (an echo)."""
        if ticket is not None and ticket.epoch != self.epoch:
            return self.remaining
        self.strikes += 1
        self.bot_checks = self.bot_checks + 1 if bot_check else 0
        delay = (
            retry_after if retry_after is not None else backoff_delay(self.strikes, self.base_s, self.cap_s)
        )
        delay = min(max(delay, pause_s), self.cap_s)
        self._until = max(self._until, time.monotonic() + delay)
        self.epoch += 1
        self.window = 1
        for held in self._trial:
            _cancel(held)
        self._trial.clear()
        self._notify()
        return delay

    def success(self, ticket: Ticket | None = None) -> None:
        """A download finished: the site answers. One that started before the latest pause says
        nothing about now."""
        if ticket is None or ticket.epoch == self.epoch:
            self.strikes = self.bot_checks = 0
        if ticket is not None:
            self._prove(ticket)

    def leave(self, ticket: Ticket) -> None:
        """A download let in by ``enter`` ended without a success (or its success was counted)."""
        _cancel(ticket)
        if ticket in self._trial:
            self._trial.discard(ticket)
            self._notify()

    @property
    def remaining(self) -> float:
        return max(0.0, self._until - time.monotonic())

    async def wait(self, stop: asyncio.Event) -> None:
        """Until the pause is over (another 429 may extend it) or the run is stopping."""
        while (left := self.remaining) > 0 and not stop.is_set():
            await sleep_unless(stop, left)

    async def enter(self, stop: asyncio.Event) -> Ticket | None:
        """A ticket to start a download once the pause is over and the slow start has room;
        None when the run is stopping first. ``begin`` it when the download starts; give it back
        with ``success`` or ``leave``."""
        while not stop.is_set():
            await self.wait(stop)
            if stop.is_set():
                break
            if self.window is None:
                return Ticket(self.epoch)
            if len(self._trial) < self.window:
                ticket = Ticket(self.epoch, trial=True)
                self._trial.add(ticket)
                return ticket
            await _either(stop, self._changed)
        return None

    def begin(self, ticket: Ticket) -> None:
        """``ticket``'s download starts now: on trial, it proves after ``probe_s`` with no new pause."""
        if ticket in self._trial and ticket.timer is None:
            ticket.timer = asyncio.get_running_loop().call_later(self.probe_s, self._prove, ticket)

    def _prove(self, ticket: Ticket) -> None:
        """``ticket``'s download ran long enough, or succeeded: one more may be on trial."""
        _cancel(ticket)
        if ticket not in self._trial or self.window is None:
            return
        self._trial.discard(ticket)
        self.window += 1
        if self.window >= OPEN_AT:
            self.window = None
            self._trial.clear()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def _cancel(ticket: Ticket) -> None:
    if ticket.timer is not None:
        ticket.timer.cancel()
        ticket.timer = None


async def _either(stop: asyncio.Event, changed: asyncio.Event) -> None:
    """Until ``stop`` or ``changed`` is set."""
    waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changed.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
