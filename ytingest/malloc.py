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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

ARENAS = 2
MMAP_THRESHOLD = 1 << 20  # bytes: larger blocks are mapped, and unmapped when freed
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
