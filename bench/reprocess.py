"""Re-embedding vs re-transcribing the same stored channel, side by side in one run.

    python -m bench.reprocess            # the six sample episodes (~145 s of speech), 2 rounds

Stores the sample channel once (audio kept), then alternates, per round, ``reprocess --all
--embed-model bundled-meanmax`` and back to ``bundled`` (re-embed only: text in, vectors out)
with ``reprocess --all --asr-model bundled`` (the kept audio through the whole pipeline again).
Each is one real CLI process, model loading included; the wall seconds each reports for its own
work (``wall_seconds``) and the process's wall time are printed, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ytingest.testing import ChannelServer, serve_in_thread


def _cli(home: Path, *args: str) -> tuple[dict[str, object], float]:
    env = {**os.environ, "YTINGEST_HOME": str(home), "SPEAKERS": "false", "KEEP_AUDIO": "true"}
    env.pop("DATABASE_URL", None)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "ytingest", *args, "--json", "--log-level", "warning"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({proc.returncode}): {proc.stderr[-1000:]}")
    return json.loads(proc.stdout.splitlines()[-1]), wall


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(ChannelServer()) as channel:
        home = Path(tmp) / "home"
        stored, _ = _cli(home, "stream", channel.feed_url)
        print(f"stored {stored['done']} videos, {stored['segments']} segments, {stored['audio_seconds']} s")
        totals = {"re-embed": [0.0, 0.0], "re-transcribe": [0.0, 0.0]}
        for _ in range(rounds):
            for model in ("bundled-meanmax", "bundled"):
                out, wall = _cli(home, "reprocess", "--all", "--embed-model", model)
                totals["re-embed"][0] += float(out["wall_seconds"]) / 2  # type: ignore[arg-type]
                totals["re-embed"][1] += wall / 2
            out, wall = _cli(home, "reprocess", "--all", "--asr-model", "bundled")
            totals["re-transcribe"][0] += float(out["wall_seconds"])  # type: ignore[arg-type]
            totals["re-transcribe"][1] += wall
        for name, (work, wall) in totals.items():
            print(f"{name:14s} work {work / rounds:6.2f} s   process {wall / rounds:6.2f} s (per run, mean)")
        embed, asr = totals["re-embed"], totals["re-transcribe"]
        print(f"re-transcribe / re-embed: work {asr[0] / embed[0]:.1f}x, process {asr[1] / embed[1]:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    main(parser.parse_args().rounds)
