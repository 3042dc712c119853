"""ASR batching modes on the same files: plain per file, batched per file, faster-whisper's
BatchedInferencePipeline per file, and cross-file batches. ``python -m bench.asr_modes [copies]``."""

from __future__ import annotations

import sys
import time

from faster_whisper import BatchedInferencePipeline

from tests.wer import wer
from ytingest.models.asr import WhisperTranscriber
from ytingest.testing import sample_episodes


def main(copies: int = 2) -> None:
    eps = sample_episodes() * copies
    total = sum(e.duration for e in eps)
    print(f"{len(eps)} files, {total:.0f} s of audio")
    for mode in ("off", "file", "cross"):
        asr = WhisperTranscriber("bundled", device="cpu", batching=mode, batch_size=8)
        asr.transcribe(eps[0].path)  # warm-up
        t0 = time.perf_counter()
        prepared = [asr.prepare(e.path) for e in eps]
        t1 = time.perf_counter()
        results = asr.transcribe_prepared(prepared)
        t2 = time.perf_counter()
        texts = [" ".join(s.text for s in r.segments) for r in results]
        mean = sum(wer(e.text, t) for e, t in zip(eps, texts, strict=True)) / len(eps)
        rate = total / (t2 - t1)
        print(
            f"  {mode:6s} prepare {t1 - t0:5.2f} s  inference {t2 - t1:6.2f} s = {rate:5.1f} audio-s/s"
            f"  WER {mean:.3f}  segments {sum(len(r.segments) for r in results)}"
        )
        if mode == "file":
            pipe = BatchedInferencePipeline(asr._model)
            t0 = time.perf_counter()
            out = [list(pipe.transcribe(p.audio, batch_size=8, beam_size=1)[0]) for p in prepared]
            dt = time.perf_counter() - t0
            mean = sum(wer(e.text, " ".join(s.text for s in r)) for e, r in zip(eps, out, strict=True)) / len(
                eps
            )
            print(
                f"  BatchedInferencePipeline (VAD included) {dt:6.2f} s = {total / dt:5.1f} audio-s/s"
                f"  WER {mean:.3f}  segments {sum(map(len, out))}"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
