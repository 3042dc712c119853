"""``DownloadGate``: the download budget every worker of a cluster shares, kept in its database.

- **Concurrency** (DOWNLOAD_CONCURRENCY_GLOBAL): a download holds one of N slots, a PostgreSQL
  session advisory lock ``(GATE_LOCKS, slot)`` on the gate's own connection. A worker that dies
  (kill -9, power loss) loses its connection, and the server frees its slots at once.
- **Rate** (DOWNLOAD_RATE_GLOBAL, downloads per hour): one row holds the next start time; each
  download takes the next start in one atomic UPDATE and waits for it (even pacing, no bursts).
- **Pause**: a 429 or a bot check in any worker moves ``paused_until`` on, and every worker's
  next download waits for it.

A lost gate connection is opened again; the downloads that held slots on the old one keep going
without them, so new passes wait until they have ended (the cap holds across the reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ytingest.db.gate import GateSession
from ytingest.db.pool import Store
from ytingest.errors import StoreError
from ytingest.logs import get_logger
from ytingest.stages.pause import sleep_unless

log = get_logger()
POLL_S = 0.5  # how often a download waiting for a free slot (or the database) looks again


@dataclass(frozen=True, slots=True)
class Pass:
    """Leave to download: the slot held (None: no cap), on which connection of the gate."""

    slot: int | None
    generation: int
    number: int  # which pass: each is given back once


class DownloadGate:
    """Global download slots, pace and pause (see the module docstring)."""

    def __init__(self, db: Store, *, concurrency: int = 0, per_hour: float = 0.0) -> None:
        self._db, self.concurrency, self.per_hour = db, concurrency, per_hour
        self._conn: GateSession | None = None
        self._generation = 0  # which connection: a pass of an earlier one holds no lock any more
        self._lock = asyncio.Lock()  # one query at a time on the gate's connection
        # the slots this connection holds: a session may lock its own lock again, and that second
        # lock would never be given back, so a worker's second download must not try its first's
        self._held: set[int] = set()
        self._out: dict[int, int] = {}  # passes out: number -> generation
        self._numbers = itertools.count()

    async def open(self) -> None:
        """Open the connection now rather than at the first download."""
        async with self._session():
            pass

    async def close(self) -> None:
        """Close the connection: the server frees every slot it held."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[GateSession]:
        """The gate's connection, one query at a time (``_lock`` held); a lost one is opened again,
        as a new generation."""
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._conn = await GateSession.open(self._db)
                self._generation += 1
                self._held.clear()
            yield self._conn

    async def enter(self, stop: asyncio.Event) -> Pass | None:
        """Wait for the global pause to end, a free slot and this download's start time; None
        when ``stop`` is set first (nothing is held then). A database that is away is waited for."""
        while not stop.is_set():
            try:
                held = await self._try_enter(stop)
            except StoreError as exc:
                log.warning("download_gate_retry", reason=str(exc))
                held = None
            if held is not None:
                return held
            await sleep_unless(stop, POLL_S * random.uniform(0.5, 1.5))
        return None

    async def _try_enter(self, stop: asyncio.Event) -> Pass | None:
        async with self._session() as gate:
            paused = await gate.paused_for()
        if paused > 0:
            await sleep_unless(stop, min(paused, 5.0))
            return None
        held = await self._take_slot()
        if held is None or stop.is_set():
            if held is not None:
                await self.leave(held)
            return None
        if self.per_hour > 0:
            try:
                async with self._session() as gate:
                    wait = await gate.next_start_in(3600.0 / self.per_hour)
                if wait > 0 and await sleep_unless(stop, wait):
                    await self.leave(held)
                    return None
            except BaseException:  # a failed or cancelled wait gives its slot back
                await asyncio.shield(self.leave(held))
                raise
        return held

    async def _take_slot(self) -> Pass | None:
        """A pass with a free slot locked for this session (without a cap: a pass), or None."""
        async with self._session() as conn:
            if any(gen != self._generation for gen in self._out.values()):
                return None  # downloads of a lost connection still run: they count until they end
            slot = None
            if self.concurrency > 0:
                slot = await conn.take_slot(self.concurrency, sorted(self._held))
                if slot is None:
                    return None
                self._held.add(slot)
            held = Pass(slot, self._generation, next(self._numbers))
            self._out[held.number] = held.generation
            return held

    async def leave(self, held: Pass) -> None:
        """Give the slot back, once (one of a lost connection is gone already). The unlock is
        shielded: a download cancelled meanwhile must not leave its slot locked."""
        if self._out.pop(held.number, None) is None or held.slot is None:
            return
        await asyncio.shield(self._unlock(held.slot, held.generation))

    async def _unlock(self, slot: int, generation: int) -> None:
        async with self._lock:  # (a reconnect in between would make the slot another pass's)
            if generation != self._generation or slot not in self._held:
                return
            self._held.discard(slot)
            if self._conn is not None:
                await self._conn.unlock(slot)  # a connection that is going frees it with itself

    async def pause(self, seconds: float, reason: str) -> None:
        """Pause every worker's downloads for ``seconds`` (a pause already longer stays, with its
        reason). A database that is away cannot be told: this worker's own pause still holds."""
        try:
            async with self._session() as gate:
                await gate.pause(seconds, reason)
        except StoreError as exc:
            log.warning("download_pause_not_shared", reason=str(exc))
            return
        log.warning("downloads_paused_globally", pause_s=round(seconds, 1), reason=reason)
