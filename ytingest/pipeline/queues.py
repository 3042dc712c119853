"""The bounded queues between stages, and how N workers share one and close the next."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class StageQueue(asyncio.Queue[T | None], Generic[T]):
    """A stage's input queue that also knows how much audio waits in it.

    ``worth(item)`` is what one item is worth in audio-seconds (from the pipeline description);
    ``None`` is the end marker: it is worth nothing and is not counted as waiting (a queue holding
    only the marker reads 0 on the monitor). ``weight(item)``, when given, is what an item
    counts for against ``maxsize`` (the queue ahead of the model counts speech chunks, not
    windows); a put waits while the weights held reach ``maxsize``, and an empty queue always
    takes one item. ``_put``/``_get`` are the hooks asyncio's own queue subclasses use.
    """

    def __init__(
        self,
        maxsize: int = 0,
        *,
        worth: Callable[[T], float] | None = None,
        weight: Callable[[T], int] | None = None,
    ) -> None:
        super().__init__(maxsize)
        self._worth = worth
        self._weight = weight
        self.audio_seconds = 0.0
        self.held = 0  # the weights of the items in the queue
        self._ends = 0  # end markers in the queue

    def _value(self, item: T | None) -> float:
        return self._worth(item) if item is not None and self._worth is not None else 0.0

    def _units(self, item: T | None) -> int:
        if item is None:
            return 0
        return self._weight(item) if self._weight is not None else 1

    def qsize(self) -> int:
        """Items waiting; with ``weight``, their weights (what ``full`` and the monitor compare to
        ``maxsize``)."""
        return self.held if self._weight is not None else super().qsize() - self._ends

    def _put(self, item: T | None) -> None:
        self.audio_seconds += self._value(item)
        self.held += self._units(item)
        self._ends += item is None
        super()._put(item)  # asyncio.Queue's subclass hook, as PriorityQueue uses it

    def _get(self) -> T | None:
        item: T | None = super()._get()
        self.audio_seconds = max(0.0, self.audio_seconds - self._value(item))
        self.held = max(0, self.held - self._units(item))
        self._ends -= item is None
        return item


def take_waiting(
    inbox: asyncio.Queue[T | None], first: T, most: int, weight: Callable[[T], int] | None = None
) -> tuple[list[T], bool]:
    """``first`` plus the items already waiting in ``inbox`` (never waiting for more) until they
    weigh ``most`` (``weight``: 1 per item unless given); and whether the end marker was among them."""
    group, held = [first], weight(first) if weight else 1
    while held < most and not inbox.empty():
        item = inbox.get_nowait()
        if item is None:
            return group, True
        group.append(item)
        held += weight(item) if weight else 1
    return group, False


class Closing:
    """N workers share one input queue; the last one to see the end closes the next queue
    (or, for the last stage, sets ``finished``).

    ``None`` marks the end of a queue. A worker that reads it puts it back for its
    siblings, so every worker sees it exactly once.
    """

    def __init__(
        self, workers: int, downstream: asyncio.Queue[Any] | None, finished: asyncio.Event | None = None
    ) -> None:
        self._left = workers
        self._downstream = downstream
        self._finished = finished

    async def worker_done(self, upstream: asyncio.Queue[Any]) -> None:
        upstream.put_nowait(None)
        self._left -= 1
        if self._left > 0:
            return
        if self._downstream is not None:
            await self._downstream.put(None)
        if self._finished is not None:
            self._finished.set()
