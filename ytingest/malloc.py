"""glibc malloc settings for ytingest's own processes (the CLI, the decoder child and its pool
workers), never for an app that imports ``Engine``. Each returns False where there is no glibc
(macOS, Windows, musl) or it refused, and never raises.

Measured on the hour-long e2e stream (tests/e2e/test_long_video.py, 2 cores, tiny.en):

- **Arenas** (the CLI): each thread that allocates while another holds the main arena gets an
  arena of its own, and an arena keeps what it once held. The model, speaker-ID and embedding
  threads each built one: 2176 MiB peak, 2065 MiB capped at two arenas.
- **Large allocations** (the decoder processes): glibc raises its mmap threshold each time a large
  block is freed, up to 32 MiB, so a window's samples, VAD frames and STFTs (1-30 MiB each) come
  back from the heap, which then stays at its high-water mark. With the threshold fixed at 1 MiB
  they are mapped and unmapped, and the decoder child's peak goes 444 -> 311 MiB (steady 193
  MiB instead of climbing window after window). The engine is left alone: fixed there, its peak
  fell 1589 -> 1438 MiB, but system time rose 57 -> 92 s and the hour took 18% longer.
- **Free pages inside the heap** (the CLI): the engine's median RSS still rose over the hour,
  first third to last, 1062 -> 1167, 1121 -> 1247 MiB in two runs (with or without window
  checkpoints). ``malloc_trim(0)`` every 10 s: 1085 -> 1147 MiB, the tree's 1306 -> 1289 MiB,
  the same wall time (133 s).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

ARENAS = 2
MMAP_THRESHOLD = 1 << 20  # bytes: larger blocks are mapped, and unmapped when freed
TRIM_EVERY_S = 10.0
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
_M_ARENA_MAX = -8


def _mallopt(param: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(param, value))
    except (OSError, AttributeError):
        return False


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas, as ``MALLOC_ARENA_MAX`` would (the CLI's threads)."""
    return _mallopt(_M_ARENA_MAX, arenas)


def map_large_blocks(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold, as ``MALLOC_MMAP_THRESHOLD_`` would (the decoder processes)."""
    return _mallopt(_M_MMAP_THRESHOLD, threshold)


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def trim_periodically(every_s: float = TRIM_EVERY_S) -> bool:
    """Every ``every_s``, hand the free pages inside the heap back to the system (glibc's
    ``malloc_trim(0)``, a daemon thread; the CLI): what a window's freed arrays leave between
    live blocks is otherwise kept, and the engine's resident size creeps up over an hour."""
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False

    def trim() -> None:
        while True:
            stop.wait(every_s)
            libc.malloc_trim(0)

    stop = threading.Event()
    threading.Thread(target=trim, name="malloc-trim", daemon=True).start()
    return True
