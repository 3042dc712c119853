"""``GateSession``: the SQL of the cluster's download gate (``ytingest.workers.gate``), on one
connection of its own.

A slot is a session advisory lock ``(GATE_LOCKS, slot)`` on this connection, so the server frees
it when the connection ends (a worker killed outright included). The ``download_gate`` row holds
the global pace (the next start time) and pause. Every query raises a transient ``StoreError``
when the database fails; one query at a time (the caller serialises them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import asyncpg

from ytingest.db.pool import Store, store_errors
from ytingest.db.workers import GATE_LOCKS
from ytingest.errors import StoreError


class GateSession:
    """The gate's connection and its queries."""

    def __init__(self, conn: asyncpg.Connection, store: Store) -> None:
        self._conn, self._store = conn, store

    @classmethod
    async def open(cls, store: Store) -> GateSession:
        return cls(await store.connect_one("open the download gate"), store)

    @property
    def backend_pid(self) -> int:
        """The server process of this session (``pg_locks.pid`` of its slots)."""
        return int(self._conn.get_server_pid())

    def is_closed(self) -> bool:
        return bool(self._conn.is_closed())

    async def close(self) -> None:
        """Close the connection (dropped if its link is gone): the server frees every slot."""
        await self._store.close_one(self._conn)

    async def paused_for(self) -> float:
        """Seconds left of the global pause (0: none)."""
        with store_errors("download gate", self._store.where):
            left = await self._conn.fetchval(
                "SELECT greatest(extract(epoch FROM paused_until - now()), 0)::float8 FROM download_gate"
            )
        return float(left or 0.0)

    async def take_slot(self, slots: int, skip: Sequence[int]) -> int | None:
        """Lock the first free slot of ``slots`` for this session, never one of ``skip`` (held by
        this session already: locked again, it would never be given back); None: all taken."""
        with store_errors("download gate", self._store.where):
            slot = await self._conn.fetchval(
                "SELECT s FROM generate_series(0, $2 - 1) AS s WHERE"  # CASE: in this order
                " CASE WHEN s = ANY($3::int[]) THEN false ELSE pg_try_advisory_lock($1, s) END"
                " LIMIT 1",
                GATE_LOCKS,
                slots,
                sorted(skip),
            )
        return None if slot is None else int(slot)

    async def unlock(self, slot: int) -> None:
        """Give ``slot`` back; a connection that is going frees it anyway, so errors are ignored."""
        if self._conn.is_closed():
            return
        with contextlib.suppress(StoreError), store_errors("download gate", self._store.where):
            await self._conn.execute("SELECT pg_advisory_unlock($1, $2)", GATE_LOCKS, slot)

    async def next_start_in(self, interval_s: float) -> float:
        """Take the next start of the global pace (starts ``interval_s`` apart) and return how many
        seconds from now it is (≤ 0: now)."""
        with store_errors("download gate", self._store.where):
            wait = await self._conn.fetchval(
                "UPDATE download_gate"
                " SET next_start = greatest(next_start, now()) + make_interval(secs => $1)"
                " RETURNING extract(epoch FROM next_start - now())::float8 - $1",
                interval_s,
            )
        return float(wait or 0.0)

    async def pause(self, seconds: float, reason: str) -> None:
        """Pause every worker's downloads for ``seconds`` (a pause already longer stays, with its
        reason)."""
        with store_errors("download gate", self._store.where):
            await self._conn.fetchval(
                "UPDATE download_gate SET paused_until = now() + make_interval(secs => $1), pause_reason = $2"
                " WHERE paused_until < now() + make_interval(secs => $1) RETURNING 1",
                seconds,
                reason,
            )
