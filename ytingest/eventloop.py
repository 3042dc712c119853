"""Event loop choice (uvloop where it exists) and the one process-wide setting it needs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ytingest.logs import get_logger

T = TypeVar("T")
log = get_logger()


def loop_factory(choice: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (not on Windows) unless LOOP=asyncio; None: asyncio's own.

    Trade-off (``python -m bench.spawn``): uvloop starts children with fork() on the loop
    thread, 28 ms per spawn with the models loaded against 0.7 ms for asyncio's posix_spawn.
    LOOP=asyncio avoids that cost where spawns dominate.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coro: Coroutine[Any, Any, T], *, loop: str = "auto") -> T:
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(coro)


def make_fork_safe(loop: asyncio.AbstractEventLoop) -> None:
    """Keep OpenBLAS single-threaded when the loop spawns children with fork().

    uvloop starts subprocesses with fork(). OpenBLAS's fork handler deadlocks
    when another thread is inside a BLAS call (faster-whisper's feature
    extractor in the ASR executor): the parent hangs in create_subprocess_exec.
    Reproduced here in under a minute; asyncio's own loop uses vfork/posix_spawn
    and is not affected. One BLAS thread costs nothing measurable: the models'
    heavy work runs in CTranslate2 and torch, not in numpy.
    """
    if not type(loop).__module__.startswith("uvloop"):
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    log.debug("blas_single_threaded", reason="uvloop forks; OpenBLAS deadlocks on fork in threads")
