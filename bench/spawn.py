"""How long starting one child process holds the event loop, under uvloop and under asyncio.

    python -m bench.spawn            # 30 spawns of /bin/true per loop, with both models loaded

The models are loaded first so the process has the size it has during a run (fork cost grows
with the parent's memory). Prints mean and worst milliseconds per spawn for each loop.
"""

from __future__ import annotations

import asyncio
import sys
import time

from ytingest.eventloop import loop_factory, make_fork_safe
from ytingest.models.asr import WhisperTranscriber
from ytingest.models.embedder import SentenceEmbedder


async def spawn_times(n: int) -> list[float]:
    make_fork_safe(asyncio.get_running_loop())
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec("/bin/true")
        times.append(time.perf_counter() - t0)
        await proc.wait()
    return times


def main(n: int = 30) -> None:
    models = (WhisperTranscriber("bundled", device="cpu"), SentenceEmbedder("bundled", device="cpu"))
    for choice in ("uvloop", "asyncio"):
        factory = loop_factory(choice)
        if choice == "uvloop" and factory is None:
            print("uvloop: not installed")
            continue
        with asyncio.Runner(loop_factory=factory) as runner:
            times = runner.run(spawn_times(n))
        print(f"{choice:8s} spawn mean {1000 * sum(times) / n:6.1f} ms   worst {1000 * max(times):6.1f} ms")
    del models


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
