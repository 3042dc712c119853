"""A short real episode of two people taking turns (a woman and a man of the AMI meeting), with
exact turns.

Built from the real meeting clips (``tst00``/``tst01`` and ``debug.test.rttm``): only stretches
where the reference has exactly one speaker active (overlapping no one) are used, of SPEAKERS.
The clips hold little of that (all four people have 2.7-6.5 s each), so stretches down to
``MIN_STRETCH`` are taken, and ones longer than ``MAX_PIECE`` are cut at their quietest points;
each piece is used once. The pieces alternate speakers, ``GAP`` of silence between them. The turn
times are in ``samples/real/two_voices.rttm`` (original speaker ids). Developer tool; the outputs
are committed:

    python -m ytingest.testing.two_voices /work/shared/data/real-speech
"""

from __future__ import annotations

import math
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from ytingest.items import Voiceprint
from ytingest.ports import SpeakerEncoder
from ytingest.testing.audio import encode_mp3
from ytingest.testing.channel import Episode
from ytingest.testing.dialogues import Turn
from ytingest.testing.real_speech import REAL
from ytingest.testing.rttm import read_rttm, write_rttm

RTTM = REAL / "two_voices.rttm"
IDS = ("two_voices",)
SPEAKERS = ("FEO072", "MEE073")  # the most single-speaker time of either sex: a co-host pairing
RATE = 16_000
GAP = 0.3  # seconds of silence between pieces
RANK_STRETCH = 1.5  # speakers are ranked by their single-speaker time in stretches this long
MIN_STRETCH = 0.8  # shortest stretch used
MAX_PIECE = 4.0  # longer stretches are cut into pieces no longer than about this


@dataclass(frozen=True, slots=True)
class Stretch:
    """``speaker`` alone from ``start`` to ``end`` (seconds) in source file ``file``."""

    file: str
    start: float
    end: float
    speaker: str

    @property
    def duration(self) -> float:
        return self.end - self.start


def two_voices_episodes() -> list[Episode]:
    """The two episodes (turns in ``RTTM``, file ids = episode ids); no transcript, so ``text=""``."""
    episodes = []
    for episode_id in IDS:
        path = REAL / f"{episode_id}.mp3"
        with av.open(str(path)) as container:
            duration = (container.duration or 0) / 1_000_000
        episodes.append(Episode(episode_id, "Two real voices taking turns (real speech)", "", path, duration))
    return episodes


def solo_voiceprints(
    encoder: SpeakerEncoder, audio: npt.NDArray[np.float32], file: str, turns: list[Turn]
) -> list[Voiceprint]:
    """One voiceprint per speaker of ``file`` from all its stretches where only that person talks
    (as a user would cut enrolment clips), ``audio`` being that file at 16 kHz."""
    clips: dict[str, list[npt.NDArray[np.float32]]] = {}
    for st in single_speaker_stretches({file: turns}):
        clips.setdefault(st.speaker, []).append(audio[int(st.start * RATE) : int(st.end * RATE)])
    return [
        Voiceprint(who, encoder.embed([np.concatenate(parts)])[0], encoder.name, {})
        for who, parts in sorted(clips.items())
    ]


def single_speaker_stretches(turns: dict[str, list[Turn]]) -> list[Stretch]:
    """Maximal stretches where exactly one reference speaker is active, in file and time order."""
    out: list[Stretch] = []
    for file, file_turns in turns.items():
        edges = sorted({t for turn in file_turns for t in (turn.start, turn.end)})
        for a, b in zip(edges, edges[1:], strict=False):
            active = {t.speaker for t in file_turns if t.start <= a and t.end >= b}
            if len(active) != 1:
                continue
            speaker = active.pop()
            last = out[-1] if out else None
            if last and (last.file, last.end, last.speaker) == (file, a, speaker):
                out[-1] = Stretch(file, last.start, b, speaker)
            else:
                out.append(Stretch(file, a, b, speaker))
    return out


def cut(stretch: Stretch, wav: npt.NDArray[np.float32]) -> list[Stretch]:
    """``stretch`` in ceil(duration / MAX_PIECE) pieces, each cut at the quietest 50 ms (10 ms
    steps) within 30 % of a piece's length of the equal-length cut."""
    k = math.ceil(round(stretch.duration / MAX_PIECE, 6))
    cuts = [stretch.start]
    length = stretch.duration / k
    for i in range(1, k):
        ideal = stretch.start + i * length
        centres = np.arange(ideal - 0.3 * length, ideal + 0.3 * length, 0.01)
        energy = [
            float(np.mean(np.square(wav[int((c - 0.025) * RATE) : int((c + 0.025) * RATE)]))) for c in centres
        ]
        cuts.append(round(float(centres[int(np.argmin(energy))]), 2))
    cuts.append(stretch.end)
    return [Stretch(stretch.file, a, b, stretch.speaker) for a, b in zip(cuts, cuts[1:], strict=False)]


def plan(src: Path) -> dict[str, list[Stretch]]:
    """Episode id → its pieces in play order."""
    stretches = single_speaker_stretches(read_rttm(src / "debug.test.rttm"))
    speakers = SPEAKERS
    wavs = {s.file: _load(src / f"{s.file}.wav") for s in stretches}
    pieces = {
        who: [
            p
            for s in stretches
            if s.speaker == who and s.duration >= MIN_STRETCH
            for p in cut(s, wavs[s.file])
        ]
        for who in speakers
    }
    first, second = sorted(speakers, key=lambda who: -len(pieces[who]))  # the one with more pieces leads
    episodes: dict[str, list[Stretch]] = {}
    for n, episode_id in enumerate(IDS):
        mine = {who: pieces[who][n :: len(IDS)] for who in speakers}
        order = [
            mine[who][i] for i in range(len(mine[first])) for who in (first, second) if i < len(mine[who])
        ]
        episodes[episode_id] = order
    return episodes


def main(src: Path) -> None:
    episodes = plan(src)
    wavs = {p.file: _load(src / f"{p.file}.wav") for pieces in episodes.values() for p in pieces}
    truth: dict[str, list[Turn]] = {}
    gap = np.zeros(round(GAP * RATE), dtype=np.float32)
    for episode_id, pieces in episodes.items():
        parts: list[npt.NDArray[np.float32]] = []
        truth[episode_id] = []
        for i, p in enumerate(pieces):
            if i:
                parts.append(gap)
            start = sum(len(x) for x in parts) / RATE
            parts.append(wavs[p.file][round(p.start * RATE) : round(p.end * RATE)])
            truth[episode_id].append(Turn(p.speaker, start, start + len(parts[-1]) / RATE, ""))
            print(f"{episode_id}: {p.speaker} {p.file} {p.start:.3f}-{p.end:.3f} -> {start:.3f}")
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "episode.wav"
            _save(wav, np.concatenate(parts))
            encode_mp3(wav, REAL / f"{episode_id}.mp3", bitrate=48_000, rate=RATE)
        print(episode_id, (REAL / f"{episode_id}.mp3").stat().st_size, "bytes")
    write_rttm(RTTM, truth)
    for who in sorted({t.speaker for turns in truth.values() for t in turns}):
        seconds = [sum(t.end - t.start for t in truth[e] if t.speaker == who) for e in IDS]
        print(who, " + ".join(f"{s:.2f}" for s in seconds), "s")


def _load(path: Path) -> npt.NDArray[np.float32]:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    return np.concatenate(frames).astype(np.float32)


def _save(path: Path, audio: npt.NDArray[np.float32]) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
