"""Regenerate the bundled sample episodes from their scripts (developer tool).

Needs Debian's ``espeak-ng``: ``apt-get install espeak-ng``. The generated MP3
files are committed, so neither tests nor the demo run this.

    python -m ytingest.testing.make_samples
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import av

SAMPLES = Path(__file__).parent / "samples"


def synthesize(text: str, voice: str, wav: Path) -> None:
    """Speak ``text`` with espeak-ng into a WAV file (argument list, no shell)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(wav), text], check=True)


def encode_mp3(wav: Path, mp3: Path, bitrate: int = 32_000, rate: int = 22_050) -> None:
    """Re-encode a WAV file as a small mono MP3 with PyAV (a stereo file is downmixed)."""
    with av.open(str(wav)) as src, av.open(str(mp3), "w") as dst:
        stream = dst.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = bitrate
        for frame in src.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)


def main() -> None:
    """The sample channel's episodes, then the other-language clips (``samples/languages/``)."""
    for script, folder in (("episodes.json", SAMPLES), ("languages.json", SAMPLES / "languages")):
        with tempfile.TemporaryDirectory() as tmp:
            for ep in json.loads((SAMPLES / script).read_text()):
                wav, mp3 = Path(tmp) / f"{ep['id']}.wav", folder / f"{ep['id']}.mp3"
                synthesize(ep["text"], ep["voice"], wav)
                encode_mp3(wav, mp3)
                print(ep["id"], mp3.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
