"""Long episodes (15 min … 3 h) of real speech, as our users' videos are: AAC in .m4a, made once.

Every other test input is a clip of 15-65 s; these are what a channel of podcasts or talks
serves. An episode loops the bundled recordings (the real AMI meeting clips and the
two-speaker clip twice per round, the synthetic samples once), shuffled each round, with
0.3-1.5 s of silence between pieces. The same seed for every length, so a shorter episode is
the start of a longer one. No reference transcript: ``Episode.text`` is ``""``; the title
says the length.

    ep = long_episode(60, cache_dir)                 # cache_dir/long-60min-m4a.m4a, reused
    ChannelServer(long_channel([15, 60], cache_dir))

Fast because nothing long is encoded: each recording is encoded once (a few seconds for all
of them), then the episode is muxed from those packets, retimed, with repeated packets of
encoded silence for the gaps (AAC, MP3 and Opus frames decode on their own once the previous
frame is silence, so the joins are seamless). A 180-minute .m4a takes a few seconds.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np

from ytingest.testing.channel import SAMPLES, Episode

REAL = SAMPLES / "real"
SEED = 20260101
GAP_S = (0.3, 1.5)


@dataclass(frozen=True, slots=True)
class Format:
    """How an episode file is written: container, codec, sample rate, bit rate (mono)."""

    container: str
    codec: str
    rate: int
    bit_rate: int


# YouTube serves audio as AAC in .m4a (44.1 kHz) or Opus in .webm (48 kHz)
FORMATS = {
    "m4a": Format("mp4", "aac", 44_100, 64_000),
    "webm": Format("webm", "libopus", 48_000, 64_000),
    "mp3": Format("mp3", "libmp3lame", 44_100, 64_000),
}


def default_cache_dir() -> Path:
    """``$YTINGEST_TEST_AUDIO`` or ``~/.cache/ytingest/long-episodes``: survives between test runs."""
    env = os.environ.get("YTINGEST_TEST_AUDIO")
    return Path(env) if env else Path.home() / ".cache" / "ytingest" / "long-episodes"


def episode_id(minutes: float, fmt: str = "m4a") -> str:
    """``long-60min-m4a``, ``long-7p5min-m4a``: a safe file name and URL path segment."""
    return f"long-{minutes:g}min-{fmt}".replace(".", "p")


def long_episode(minutes: float, folder: Path, *, fmt: str = "m4a") -> Episode:
    """An episode of ``minutes`` of real speech in ``folder/<id>.<fmt>``, written unless it exists."""
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, not {minutes}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    ep_id = episode_id(minutes, fmt)
    path = Path(folder) / f"{ep_id}.{fmt}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            _write(partial, minutes * 60, FORMATS[fmt])
            partial.replace(path)  # atomic: a concurrent writer (pytest-xdist) makes the same bytes
        finally:
            partial.unlink(missing_ok=True)
    with av.open(str(path)) as container:
        duration = (container.duration or 0) / 1_000_000
    title = f"Long episode: {minutes:g} min of real speech ({fmt})"
    return Episode(ep_id, title, "", path, duration)


def long_channel(minutes_list: Sequence[float], folder: Path, *, fmt: str = "m4a") -> list[Episode]:
    """One long episode per entry, in that order (the feed lists them newest first);
    a length given twice gets a second id (``long-15min-m4a-2``) sharing the file."""
    out: list[Episode] = []
    for minutes in minutes_list:
        ep = long_episode(minutes, folder, fmt=fmt)
        same = sum(1 for e in out if e.path == ep.path)
        out.append(replace(ep, id=f"{ep.id}-{same + 1}") if same else ep)
    return out


def sources() -> list[Path]:
    """The recordings an episode loops: the real ones first, then the synthetic samples."""
    real = [REAL / f"{name}.mp3" for name in ("tst00", "tst01", "stereo_diarization")]
    return real + sorted(SAMPLES.glob("*.mp3"))


def _rounds(rng: random.Random) -> list[Path]:
    """One round: each real recording twice, each synthetic sample once, shuffled."""
    real, synthetic = sources()[:3], sources()[3:]
    pieces = real * 2 + synthetic
    rng.shuffle(pieces)
    return pieces


def _write(path: Path, seconds: float, f: Format) -> None:
    silence, frame = _silence(f)
    rng = random.Random(SEED)
    want = round(seconds * f.rate)
    pts = 0
    with av.open(str(path), "w", format=f.container) as out:
        stream = out.add_stream(f.codec, rate=f.rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        stream.bit_rate = f.bit_rate
        tb = Fraction(1, f.rate)  # the packets' clock; the muxer rebases to the stream's
        while pts < want:
            for source in _rounds(rng):
                gap = round(rng.uniform(*GAP_S) * f.rate / frame)
                for data, dur in [*_piece(source, f), *[(silence, frame)] * gap]:
                    if pts >= want:
                        break
                    packet = av.Packet(data)
                    packet.stream = stream
                    packet.pts = packet.dts = pts
                    packet.duration = dur
                    packet.time_base = tb
                    out.mux(packet)
                    pts += dur
                if pts >= want:
                    break


@cache
def _piece(src: Path, f: Format) -> list[tuple[bytes, int]]:
    """One recording encoded on its own, once per process: (packet bytes, samples) each."""
    return _encode(_pcm(src, f.rate), f)


@cache
def _silence(f: Format) -> tuple[bytes, int]:
    """A packet of encoded silence and the codec's frame size in samples."""
    quiet = _encode(np.zeros(f.rate * 2, dtype=np.float32), f)
    return quiet[len(quiet) // 2]  # steady state, away from the start and the flush


def _pcm(src: Path, rate: int) -> np.ndarray:
    """The file as mono float32 at ``rate``."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks = []
    with av.open(str(src)) as container:
        for frame in container.decode(audio=0):
            chunks += [r.to_ndarray()[0] for r in resampler.resample(frame)]
    chunks += [r.to_ndarray()[0] for r in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


def _encode(pcm: np.ndarray, f: Format) -> list[tuple[bytes, int]]:
    """One independent encoding of ``pcm``: its packets as (bytes, duration in samples)."""
    ctx = av.CodecContext.create(f.codec, "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate = f.rate
    ctx.layout = "mono"
    ctx.format = "flt" if f.codec == "libopus" else "fltp"  # what each encoder takes
    ctx.bit_rate = f.bit_rate
    ctx.open()
    size = ctx.frame_size or 1024
    out: list[tuple[bytes, int]] = []
    for start in range(0, len(pcm), size):
        block = pcm[start : start + size]
        if len(block) < size:
            block = np.pad(block, (0, size - len(block)))
        frame = av.AudioFrame.from_ndarray(block[None, :], format=ctx.format.name, layout="mono")
        frame.sample_rate = f.rate
        frame.pts = start
        out += [(bytes(p), size) for p in ctx.encode(frame)]
    out += [(bytes(p), size) for p in ctx.encode(None)]
    return out


def main() -> None:
    """``python -m ytingest.testing.long_episodes MINUTES [FOLDER] [FMT]``: make one, say how long it took."""
    import sys
    import time

    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    folder = Path(sys.argv[2]) if len(sys.argv) > 2 else default_cache_dir()
    fmt = sys.argv[3] if len(sys.argv) > 3 else "m4a"
    t0 = time.perf_counter()
    ep = long_episode(minutes, folder, fmt=fmt)
    dt = time.perf_counter() - t0
    size = ep.path.stat().st_size
    print(f"{ep.path}  {ep.duration / 60:.2f} min  {size / 1e6:.1f} MB  {dt:.1f} s")


if __name__ == "__main__":
    main()
