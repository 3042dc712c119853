"""Regenerate the bundled sample episodes from their scripts (developer tool).

Needs Debian's ``espeak-ng``: ``apt-get install espeak-ng``. The generated MP3
files are committed, so neither tests nor the demo run this.

    python -m tests.support.make_samples
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from ytingest.testing.audio import encode_mp3
from ytingest.testing.channel import SAMPLES


def synthesize(text: str, voice: str, wav: Path) -> None:
    """Speak ``text`` with espeak-ng into a WAV file (argument list, no shell)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(wav), text], check=True)


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
