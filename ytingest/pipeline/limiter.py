"""A concurrency limit that can be changed while tasks hold it (autotune resizes downloads)."""

from __future__ import annotations

import asyncio


class Limiter:
    """Like ``asyncio.Semaphore(limit)``, plus ``resize`` and ``wait_idle``."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._active = 0
        self._changed = asyncio.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def active(self) -> int:
        return self._active

    async def acquire(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._active < self._limit)
            self._active += 1

    async def release(self) -> None:
        async with self._changed:
            self._active -= 1
            self._changed.notify_all()

    async def resize(self, limit: int) -> None:
        """New limit; tasks above it finish normally, no new ones start until below it."""
        async with self._changed:
            self._limit = max(1, limit)
            self._changed.notify_all()

    async def wait_idle(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._active == 0)
