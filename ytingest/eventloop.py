"""Event loop choice (uvloop where it exists), the one process-wide setting it needs, and the
CLI's cap on glibc's malloc arenas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ytingest.logs import get_logger

T = TypeVar("T")
log = get_logger()


MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX`` would): the CLI only, never the library.

    Each thread that allocates while another holds the main arena gets an arena of its own, and
    an arena keeps what it once held. The model, speaker-ID and embedding threads each built one:
    an hour-long stream peaked at 2176 MiB (its e2e test's bound is 2200), and 2065 MiB capped at
    two arenas. False where there is no glibc (macOS, Windows, musl) or it refused."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


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
