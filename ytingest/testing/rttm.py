"""RTTM, the diarization world's file of speaker turns: ``SPEAKER <file> 1 <start> <duration> ...``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ytingest.testing.dialogues import Turn


def read_rttm(path: Path | str) -> dict[str, list[Turn]]:
    """File id → its ``SPEAKER`` turns in file order (``Turn.text`` is empty)."""
    turns: dict[str, list[Turn]] = {}
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[0] != "SPEAKER":
            continue
        start, duration = float(fields[3]), float(fields[4])
        turns.setdefault(fields[1], []).append(Turn(fields[7], start, round(start + duration, 6), ""))
    return turns


def write_rttm(path: Path | str, turns: Mapping[str, Sequence[Turn]]) -> None:
    """Write ``SPEAKER`` lines (millisecond precision), the format ``read_rttm`` reads."""
    lines = [
        f"SPEAKER {file_id} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>"
        for file_id, file_turns in turns.items()
        for t in file_turns
    ]
    Path(path).write_text("".join(line + "\n" for line in lines))
