"""``DownloadGate``: the download budget every worker of a cluster shares, kept in its database.

- **Concurrency** (DOWNLOAD_CONCURRENCY_GLOBAL): a download holds one of N slots, a PostgreSQL
  session advisory lock ``(GATE_LOCKS, slot)`` on the gate's own connection. A worker that dies
  (kill -9, power loss) loses its connection, and the server frees its slots at once.
- **Rate** (DOWNLOAD_RATE_GLOBAL, downloads per hour): one row holds the next start time; each
  download takes the next start in one atomic UPDATE and waits for it (even pacing, no bursts).
- **Pause**: a 429 or a bot check in any worker moves ``paused_until`` on, and every worker's
  next download waits for it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import asyncpg

from ytingest.db.cluster import GATE_LOCKS
from ytingest.db.pool import Store
from ytingest.errors import StoreError
from ytingest.logs import get_logger
from ytingest.stages.retry import sleep_unless

log = get_logger()
POLL_S = 0.5  # how often a download waiting for a free slot looks again


@dataclass(frozen=True, slots=True)
class Pass:
    """Leave to download: the slot held (None: no cap)."""

    slot: int | None


class DownloadGate:
    """Global download slots, pace and pause (see the module docstring)."""

    def __init__(self, db: Store, *, concurrency: int = 0, per_hour: float = 0.0) -> None:
        self._db, self.concurrency, self.per_hour = db, concurrency, per_hour
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one query at a time on the gate's connection
        # the slots this connection holds: a session may take an advisory lock it holds again, so
        # without this a worker's second download would share its first download's slot
        self._held: set[int] = set()

    async def open(self) -> None:
        self._conn = await self._db.connect_one("open the download gate")

    async def close(self) -> None:
        """Close the connection: the server frees every slot it held."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _connection(self) -> asyncpg.Connection:
        """The gate's connection (hold ``_lock``); a lost one is opened again (the server freed its
        slots with it: the downloads holding them go on, uncounted, and end)."""
        if self._conn is None or self._conn.is_closed():
            self._held.clear()
            self._conn = await self._db.connect_one("reopen the download gate")
        return self._conn

    async def _query(self, sql: str, *args: object) -> object:
        async with self._lock:
            conn = await self._connection()
            try:
                return await conn.fetchval(sql, *args)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise StoreError(f"download gate: {type(exc).__name__}", transient=True) from None

    async def _take_slot(self) -> int | None:
        """A free slot, locked for this session, or None. Never one this session holds: a session
        may lock its own lock again, and that second lock would never be given back."""
        async with self._lock:
            conn = await self._connection()
            try:
                slot = await conn.fetchval(
                    "SELECT s FROM generate_series(0, $2 - 1) AS s WHERE"  # CASE: in this order
                    " CASE WHEN s = ANY($3::int[]) THEN false ELSE pg_try_advisory_lock($1, s) END LIMIT 1",
                    GATE_LOCKS,
                    self.concurrency,
                    sorted(self._held),
                )
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise StoreError(f"download gate: {type(exc).__name__}", transient=True) from None
            if slot is not None:
                self._held.add(int(slot))
            return None if slot is None else int(slot)

    async def enter(self, stop: asyncio.Event) -> Pass | None:
        """Wait for the global pause to end, a free slot and this download's start time; None
        when ``stop`` is set first (nothing is held then)."""
        while not stop.is_set():
            paused = float(
                await self._query(  # type: ignore[arg-type]
                    "SELECT greatest(extract(epoch FROM paused_until - now()), 0)::float8 FROM download_gate"
                )
            )
            if paused > 0:
                await sleep_unless(stop, min(paused, 5.0))
                continue
            slot = None
            if self.concurrency > 0:
                slot = await self._take_slot()
                if slot is None:
                    await sleep_unless(stop, POLL_S * random.uniform(0.5, 1.5))
                    continue
            held = Pass(slot)
            if self.per_hour > 0:
                wait = float(
                    await self._query(  # type: ignore[arg-type]
                        "UPDATE download_gate"
                        " SET next_start = greatest(next_start, now()) + make_interval(secs => $1)"
                        " RETURNING extract(epoch FROM next_start - now())::float8 - $1",
                        3600.0 / self.per_hour,
                    )
                )
                if wait > 0 and await sleep_unless(stop, wait):
                    await self.leave(held)
                    return None
            return held
        return None

    async def leave(self, held: Pass) -> None:
        """Give the slot back."""
        if held.slot is None or held.slot not in self._held:
            return  # no slot, or one the server freed with a lost connection
        self._held.discard(held.slot)
        conn = self._conn
        if conn is None or conn.is_closed():
            return
        async with self._lock:
            try:
                await conn.execute("SELECT pg_advisory_unlock($1, $2)", GATE_LOCKS, held.slot)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                pass  # the connection is going: the server frees the slot with it

    async def pause(self, seconds: float, reason: str) -> None:
        """Pause every worker's downloads for ``seconds`` (a pause already longer stays)."""
        await self._query(
            "UPDATE download_gate"
            " SET paused_until = now() + make_interval(secs => $1), pause_reason = $2"
            " WHERE paused_until < now() + make_interval(secs => $1) RETURNING 1",
            seconds,
            reason,
        )
        log.warning("downloads_paused_globally", pause_s=round(seconds, 1), reason=reason)
