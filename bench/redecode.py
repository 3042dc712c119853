"""How often the batched ASR pass leaves a chunk half done, and what decoding it again costs:

    python -m bench.redecode                 # real speech: the meeting clips and a 15-min episode

For each input (the real 4-person meeting clips ``tst00``/``tst01``, the real two-person clip and a
15-minute long-form episode of real speech), the bundled tiny.en (CPU, int8, batch 8, word
timestamps on as with speakers) transcribes it with ``ChunkBatcher.run``, the code under test,
twice. It reports the speech chunks, the chunks decoded again (``redone``), those per audio-hour,
the model time spent decoding again (``ChunkBatcher._cover``) as a fraction of the batched pass
(the rest of ``run``), and whether the two passes gave the same segments.

It knows only ``ChunkBatcher.run``, ``_cover`` and ``redone``, which the code before the batched
re-decode had too, so the same file measures both: copy it into a worktree of the older commit and
run it there (docs/performance.md "Feeding an accelerator" has both results).
Writes bench/results/redecode.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _inputs(cache: Path) -> list[tuple[str, Path]]:
    from ytingest.testing.long_episodes import long_episode
    from ytingest.testing.real_speech import REAL

    clips = [(p.stem, p) for p in sorted(REAL.glob("*")) if p.suffix in {".mp3", ".wav", ".m4a"}]
    return [*clips, ("long-15min (real speech)", long_episode(15, cache).path)]


def _timed(batcher: Any) -> dict[str, float]:
    """Wrap the batcher's ``run`` and ``_cover`` so their wall time adds up in the returned dict."""
    spent = {"run": 0.0, "cover": 0.0}

    def timing(key: str, fn: Any) -> Any:
        def timed(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent[key] += time.perf_counter() - t0

        return timed

    batcher.run, batcher._cover = timing("run", batcher.run), timing("cover", batcher._cover)
    return spent


def measure(cache: Path) -> dict[str, Any]:
    from ytingest.models.asr import WhisperTranscriber

    asr = WhisperTranscriber("bundled", device="cpu", batching="cross", batch_size=8, word_timestamps=True)
    batcher = asr._batcher
    spent = _timed(batcher)
    rows = []
    for name, path in _inputs(cache):
        item = asr.prepare(path)
        passes = []
        for _ in range(2):
            spent["run"] = spent["cover"] = 0.0
            before = batcher.redone
            segments = batcher.run([item])[0]
            passes.append((segments, batcher.redone - before, dict(spent)))
        (first, redone, t), (second, _, _) = passes
        hours = item.seconds / 3600
        rows.append(
            {
                "input": name,
                "audio_s": round(item.seconds, 1),
                "chunks": len(item.chunks),
                "redone": redone,
                "redone_per_audio_hour": round(redone / hours, 1),
                "batched_s": round(t["run"] - t["cover"], 2),
                "redecode_s": round(t["cover"], 2),
                "redecode_share_of_batched": round(t["cover"] / max(1e-9, t["run"] - t["cover"]), 3),
                "segments": len(first),
                "same_twice": [(s.start, s.end, s.text) for s in first]
                == [(s.start, s.end, s.text) for s in second],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    return {"commit": commit.strip(), "rows": rows}


def main() -> None:
    from ytingest.testing.long_episodes import default_cache_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--out", type=Path, default=RESULTS / "redecode.json")
    args = parser.parse_args()
    result = measure(args.cache)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'input':28} {'audio s':>8} {'chunks':>6} {'redone':>6} {'/audio h':>8} {'share':>6} same")
    for r in result["rows"]:
        print(
            f"{r['input']:28} {r['audio_s']:8.1f} {r['chunks']:6d} {r['redone']:6d} "
            f"{r['redone_per_audio_hour']:8.1f} {r['redecode_share_of_batched']:6.2f} {r['same_twice']}"
        )


if __name__ == "__main__":
    main()
