"""Real (not synthetic) recordings shipped with the package, as episodes a ChannelServer can serve.

``samples/real/`` holds two 30 s clips of a real four-person AMI meeting (``tst00``, ``tst01``)
with their reference speaker turns (``debug.test.rttm``), and 5 s of two speakers from
faster-whisper's tests (``stereo_diarization``, downmixed to mono). Sources and licences are in
``samples/real/README.md``. There is no reference transcript, so ``Episode.text`` is empty.

    ChannelServer(episodes=[*sample_episodes(), *real_speech_episodes()])

The MP3s were made from the original WAV files (developer tool; the MP3s are committed):

    python -m ytingest.testing.real_speech /work/shared/data/real-speech
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import av

from ytingest.testing.audio import encode_mp3
from ytingest.testing.channel import SAMPLES, Episode

REAL = SAMPLES / "real"
RTTM = REAL / "debug.test.rttm"
MEETING_SPEAKERS = ("FEO070", "FEO072", "MEE071", "MEE073")

_TITLES = {
    "tst00": "AMI meeting, part 1 (real speech)",
    "tst01": "AMI meeting, part 2 (real speech)",
    "stereo_diarization": "Two speakers, one clip (real speech)",
}


def real_speech_episodes(*, meeting_only: bool = False) -> list[Episode]:
    """The real recordings as episodes; ids are the file stems, which are also the RTTM file ids."""
    ids = [i for i in _TITLES if not meeting_only or i.startswith("tst")]
    return [_episode(i) for i in ids]


def _episode(episode_id: str) -> Episode:
    path = REAL / f"{episode_id}.mp3"
    with av.open(str(path)) as container:
        duration = (container.duration or 0) / 1_000_000
    return Episode(episode_id, _TITLES[episode_id], "", path, duration)


def main(src: Path) -> None:
    REAL.mkdir(exist_ok=True)
    for episode_id in _TITLES:
        encode_mp3(src / f"{episode_id}.wav", REAL / f"{episode_id}.mp3", bitrate=48_000, rate=16_000)
        print(episode_id, (REAL / f"{episode_id}.mp3").stat().st_size, "bytes")
    shutil.copyfile(src / RTTM.name, RTTM)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
