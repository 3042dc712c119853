"""``ModelTurns``: who may call a model now (on a CPU, ASR, embedding and speaker ID fight for the
same cores)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class ModelTurns:
    """Who may call a model now: ASR calls may overlap each other (ASR_WORKERS); an embed or
    speaker-ID call runs ``alone``, and a waiting one goes before new ASR calls. On a CPU they
    fight for the same cores: an encode beside a running ASR batch took 5x as long as alone, and
    speaker ID's peak memory (the GE2E LSTM) added to the ASR batch's (an hour-long video's peak
    RSS went from 1.9 to 2.5 GB). Stages count their busy time from inside their turn, so the
    wait is not busy time.

    ``enabled`` False (MODEL_TURNS=off, or auto with the ASR on a GPU): every turn is granted at
    once, since a device model does not take the host's cores and waiting would idle it."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._cond = asyncio.Condition()
        self._asr = 0
        self._alone = False
        self._alone_waiting = 0

    @contextlib.asynccontextmanager
    async def asr(self) -> AsyncIterator[None]:
        if not self.enabled:
            yield
            return
        async with self._cond:
            await self._cond.wait_for(lambda: not self._alone and self._alone_waiting == 0)
            self._asr += 1
        try:
            yield
        finally:
            self._asr -= 1
            await self._wake()

    @contextlib.asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        if not self.enabled:
            yield
            return
        async with self._cond:
            self._alone_waiting += 1
            try:
                await self._cond.wait_for(lambda: self._asr == 0 and not self._alone)
            finally:
                self._alone_waiting -= 1
            self._alone = True
        try:
            yield
        finally:
            self._alone = False
            await self._wake()

    async def _wake(self) -> None:
        async with self._cond:
            self._cond.notify_all()


def turns_wanted(setting: str, asr_device: str) -> bool:
    """MODEL_TURNS: ``on``/``off``, or ``auto``: on unless the ASR model runs on a GPU."""
    return setting == "on" or (setting == "auto" and asr_device != "cuda")
