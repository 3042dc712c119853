"""What keeping a window costs, next to what the window costs to make, in one run:

    python -m bench.checkpoint_cost              # ~1 min on 2 cores; bench/results/checkpoint_cost.json
    python -m bench.checkpoint_cost --windows 5  # quicker

A window of DECODE_WINDOW_S = 300 s of speech, as tiny.en segments it (~60 segments of real
sentences: the bundled sample episodes' scripts, cut into ASR-sized lines), its 384-d embeddings
from the bundled MiniLM (timed: ``encode``), kept with ``Database.save_checkpoints`` into an
embedded PostgreSQL started here (timed: ``keep``, one statement per window, as the embed stage
writes a batch), read back and put into a window assembly as a resumed run does (timed:
``resume``, ``Resumer.resume_at``), and deleted as the store does (``forget``). Medians over
``--windows`` windows; the bytes one window takes in the table. The embed stage waits for
``keep`` (so a video is never stored before its windows are kept); ``keep / encode`` is what it
adds to that stage. The model's own time for the window (tiny.en on these 2 cores: ~15-20 s for
300 s; far less on a GPU) is not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from ytingest.config import Settings
from ytingest.db.database import Database
from ytingest.db.embedded import EmbeddedPostgres
from ytingest.items import Checkpoint, Segment, VideoRef, WindowResult, Word
from ytingest.models.embedder import SentenceEmbedder
from ytingest.pipeline.context import RunContext
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.stages.resume import Resumer
from ytingest.testing.channel import sample_episodes

RESULTS = Path(__file__).parent / "results"
SEGMENTS = 60  # tiny.en's segments in 300 s of conversational speech (about 5 s each)


def lines() -> list[str]:
    """Real sentences of ASR-segment length from the sample episodes' scripts."""
    words = " ".join(e.text for e in sample_episodes()).split()
    return [" " + " ".join(words[i : i + 14]) for i in range(0, len(words) - 14, 14)]


def window(index: int, texts: list[str]) -> WindowResult:
    segs = []
    for i in range(SEGMENTS):
        start = index * 300.0 + 5.0 * i
        text = texts[(index * SEGMENTS + i) % len(texts)]
        words = tuple(
            Word(start + k * 0.3, start + k * 0.3 + 0.25, " " + w) for k, w in enumerate(text.split())
        )
        segs.append(Segment(i, start, start + 4.8, text, -0.3, None, None, False, words))
    return WindowResult(index, False, tuple(segs), 300.0, "en", 0.98 if index == 0 else None)


async def measure(n: int) -> dict[str, object]:
    settings = Settings()
    embedder = SentenceEmbedder(settings.embed_model, device="cpu")
    texts = lines()
    with tempfile.TemporaryDirectory(prefix="ckpt-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = await server.start()
        db = Database(dsn)
        try:
            await db.connect()
            await db.migrate(embedder.dim)
            models = {"asr_model": "tiny.en", "embed_model": embedder.name, "speaker_model": ""}
            encode, keep, resume, forget, size = [], [], [], [], 0
            embedder.encode(texts[:8])  # warm
            for k in range(n):
                ref = VideoRef(f"bench{k}", f"http://x/bench{k}")
                await db.register_video(ref)
                windows = [window(i, texts) for i in range(k % 3 + 1)]  # 1-3 kept windows per video
                kept = []
                for w in windows:
                    t0 = time.perf_counter()
                    vectors = embedder.encode([s.text for s in w.segments])
                    encode.append(time.perf_counter() - t0)
                    kept.append((ref.id, Checkpoint(w, vectors)))
                    t0 = time.perf_counter()
                    await db.save_checkpoints([kept[-1]], **models)
                    keep.append(time.perf_counter() - t0)
                settings_k = Settings(ytingest_home=Path(tmp) / "home")
                ctx = RunContext(settings_k, db, metrics_for(PIPELINE, settings_k))
                t0 = time.perf_counter()
                point = await Resumer(ctx, db, **models).resume_at(ref.id)
                resume.append((time.perf_counter() - t0) / len(windows))
                assert point is not None and point.index == len(windows)
                async with db._conn("size") as conn:
                    size = await conn.fetchval(
                        "SELECT avg(octet_length(segments) + octet_length(voices) + octet_length(vectors))"
                        " FROM checkpoints"
                    )
                t0 = time.perf_counter()
                await db.delete_checkpoints([ref.id])
                forget.append(time.perf_counter() - t0)
        finally:
            await db.close()
            await server.stop()
    med = {
        name: statistics.median(v) * 1000
        for name, v in [("encode", encode), ("keep", keep), ("resume", resume), ("forget", forget)]
    }
    return {
        "windows": len(keep),
        "segments_per_window": SEGMENTS,
        "encode_ms": round(med["encode"], 1),
        "keep_ms": round(med["keep"], 1),
        "resume_ms_per_window": round(med["resume"], 1),
        "forget_ms": round(med["forget"], 1),
        "keep_over_encode": round(med["keep"] / med["encode"], 3),
        "bytes_per_window": int(size or 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--windows", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(measure(args.windows))
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "checkpoint_cost.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
