"""An embedding call alone, beside decoding in a thread, and beside decoding in the decoder process.

    python -m bench.gil

PyAV holds the GIL while it decodes; the embedder (and the ASR stage's Python side) need it
between their native calls. Same texts, same files, one run; milliseconds per encode call.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from ytingest.models.asr import WhisperTranscriber
from ytingest.models.embedder import SentenceEmbedder
from ytingest.stages.decoder_process import DecoderProcess
from ytingest.testing import sample_episodes

TEXTS = [f"segment {i}: vectors, sleep, gardens, bicycles and volcanoes" for i in range(15)]


def per_call_ms(emb: SentenceEmbedder, calls: int = 10) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        emb.encode(TEXTS)
    return 1000 * (time.perf_counter() - t0) / calls


def beside(work: Callable[[threading.Event], None], emb: SentenceEmbedder) -> float:
    """``per_call_ms`` while ``work`` runs in another thread until told to stop."""
    stop = threading.Event()
    worker = threading.Thread(target=work, args=(stop,))
    worker.start()
    time.sleep(0.5)
    try:
        return per_call_ms(emb)
    finally:
        stop.set()
        worker.join()


def main() -> None:
    asr = WhisperTranscriber("bundled", device="cpu", batching="cross")
    emb = SentenceEmbedder("bundled", device="cpu")
    paths = [e.path for e in sample_episodes()]
    emb.encode(TEXTS)

    def in_thread(stop: threading.Event) -> None:
        while not stop.is_set():
            for p in paths:
                asr.prepare(p)

    def in_process(stop: threading.Event) -> None:
        async def loop() -> None:
            decoder = DecoderProcess(asr.prepare_options)
            try:
                while not stop.is_set():
                    for p in paths:
                        await decoder.prepare(p)
            finally:
                await decoder.aclose()

        asyncio.run(loop())

    alone = per_call_ms(emb)
    thread = beside(in_thread, emb)
    process = beside(in_process, emb)
    print(f"encode of {len(TEXTS)} texts, ms per call:")
    print(f"  alone                          {alone:7.0f}")
    print(f"  beside decoding in a thread    {thread:7.0f}  ({thread / alone:.1f}x)")
    print(f"  beside the decoder process     {process:7.0f}  ({process / alone:.1f}x)")


if __name__ == "__main__":
    main()
