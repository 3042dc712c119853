"""How a WAV becomes one of the bundled samples' small MP3s (the sample makers in ``tests/support/``,
and the real recordings made into episodes on first use)."""

from __future__ import annotations

from pathlib import Path

import av


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
