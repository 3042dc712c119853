"""Reading an audio file while yt-dlp is still writing it (DECODE_WHILE_DOWNLOADING).

yt-dlp's HTTP downloader appends to ``<id>.<ext>.part`` and renames it to ``<id>.<ext>`` once
complete (a retry resumes the same ``.part``). The download stage hands the decode stage the
``.part`` as soon as its first bytes show a container that can be read front to back
(``streamable``: WebM/Matroska, or MP4 with ``moov`` ahead of the media, which YouTube's fragmented
m4a is), and writes an end marker beside it (``mark_end``) when the download has finished or
failed for good. ``GrowingFile`` reads the ``.part`` through one open descriptor (it survives the
rename, and a fix-up remux that replaces the final file), and at its end waits for more bytes
until the marker says the download is complete (then the end is real) or failed
(``DownloadEnded``). No marker and no new bytes for ``stall_s``: ``DownloadEnded`` too, so a read
never hangs.

Executor or decoder child only (it sleeps).
"""

from __future__ import annotations

import io
import json
import os
import struct
import time
from pathlib import Path

from ytingest.errors import TranscribeError

END_SUFFIX = ".end"
HEAD_BYTES = 1 << 20  # the most ``streamable`` is shown (an hour's fast-start AAC ``moov``: ~0.7 MB)
POLL_S = 0.05
# no marker and no new bytes for this long: the download stage is gone (it always writes the
# marker, on failure and cancellation too, so this guards against a dead parent, not slow sites)
STALL_S = 3 * 3600.0


class DownloadEnded(TranscribeError):
    """The file being decoded as it downloads will not be completed (the download failed, was
    cancelled, or stalled): the video's decode stops here and its windows are dropped; the
    download stage records the failure (the file itself is not at fault)."""


def end_marker(part: Path) -> Path:
    """Where the download stage says how the download of ``part`` ended (a ``.part`` name, so a
    killed run's leftovers are cleaned at the next start)."""
    return part.with_name(part.name + END_SUFFIX)


def mark_end(part: Path, error: str | None = None) -> None:
    """The download of ``part`` is complete (``error`` None) or failed with ``error``; atomic."""
    marker = end_marker(part)
    temp = marker.with_name(marker.name + ".tmp")
    temp.write_text(json.dumps({"ok": error is None, "error": error}))
    temp.replace(marker)


def read_end(part: Path) -> tuple[bool, str] | None:
    """How the download of ``part`` ended, (ok, error), or None while it is still going."""
    try:
        ended = json.loads(end_marker(part).read_text())
    except (OSError, ValueError):
        return None
    return bool(ended.get("ok")), str(ended.get("error") or "the download failed")


def streamable(head: bytes) -> bool | None:
    """Whether a file starting with ``head`` can be decoded front to back as it grows: True for
    WebM/Matroska and for MP4 whose ``moov`` comes before its media (fragmented, or fast-start);
    False for anything else (an MP4 with ``moov`` at the end or with a video track, other
    containers: decoded whole); None while ``head`` is too short to tell (an MP4's whole ``moov``
    is needed: up to HEAD_BYTES, beyond that the file is decoded whole)."""
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska / WebM
        return True
    if len(head) < 8:
        return None
    if head[4:8] != b"ftyp":
        return False
    at = 0
    while at + 8 <= len(head):
        size, kind = struct.unpack(">I4s", head[at : at + 8])
        if size == 1:  # a 64-bit size follows
            if at + 16 > len(head):
                return None
            size = struct.unpack(">Q", head[at + 8 : at + 16])[0]
        if kind == b"moov":
            return None if at + size > len(head) else _audio_only(head[at : at + size])
        if kind in (b"mdat", b"moof"):
            return False
        if size < 8:
            return False  # 0 (to the end of the file) or corrupt: nothing more to find
        at += size
    return None


def _audio_only(moov: bytes) -> bool:
    """No video track among the ``hdlr`` boxes of ``moov``: an interleaved file with video (a
    muxed fallback format) may need the demuxer to seek back, which a growing read cannot."""
    at = moov.find(b"hdlr")
    while at >= 0:
        if moov[at + 12 : at + 16] == b"vide":  # after version/flags and pre_defined
            return False
        at = moov.find(b"hdlr", at + 4)
    return True


class GrowingFile(io.RawIOBase):
    """``part`` read as the download writes it (see the module's docstring). Seekable within what
    has been written (a position past it waits for the bytes); a seek from the end answers -1
    (PyAV passes it on as "size unknown", and demuxers go on without it) until the download is
    complete."""

    def __init__(self, part: Path, *, stall_s: float, seekable: bool = True, poll_s: float = POLL_S) -> None:
        super().__init__()
        self.part, self.stall_s, self.poll_s, self._seekable = part, stall_s, poll_s, seekable
        self._fd = os.open(part, os.O_RDONLY)
        self._pos = 0
        self._complete = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif self._complete or read_end(self.part) is not None:
            self._wait_until(lambda: self._complete)
            self._pos = os.fstat(self._fd).st_size + offset
        else:
            return -1  # the size is not known yet: the demuxer goes on without it
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if want == 0:
            return 0
        self._wait_until(lambda: self._complete or os.fstat(self._fd).st_size > self._pos)
        data = os.pread(self._fd, want, self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _wait_until(self, ready: object) -> None:
        """Until ``ready()`` or the download is complete; DownloadEnded if it failed or stalled."""
        assert callable(ready)
        size, since = os.fstat(self._fd).st_size, time.monotonic()
        while not ready():
            ended = read_end(self.part)
            if ended is not None:
                ok, error = ended
                if not ok:
                    raise DownloadEnded(f"the download failed while decoding: {error}")
                self._complete = True  # the descriptor's file is whole: its end is the end
                return
            now = os.fstat(self._fd).st_size
            if now != size:
                size, since = now, time.monotonic()
            elif time.monotonic() - since > self.stall_s:
                raise DownloadEnded(f"the download wrote nothing for {self.stall_s:.0f} s")
            time.sleep(self.poll_s)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def open_growing(part: Path, final: Path, *, stall_s: float) -> GrowingFile | Path:
    """The ``.part`` to read as it grows or, when it is gone already (renamed, or replaced by a
    fix-up), ``final`` once the download says it is complete. DownloadEnded: it failed or stalled."""
    try:
        with part.open("rb") as f:
            matroska = f.read(4) == b"\x1a\x45\xdf\xa3"
        # a seekable MP4 input makes the demuxer read every fragment before the first packet
        return GrowingFile(part, stall_s=stall_s, seekable=matroska)
    except FileNotFoundError:
        pass
    wait_whole(part, stall_s=stall_s)
    return final


def wait_whole(part: Path, *, stall_s: float = STALL_S) -> None:
    """Until the download of ``part`` is complete (its file is then whole, under its final name).
    DownloadEnded: it failed, or wrote nothing for ``stall_s``."""
    since, size = time.monotonic(), -1
    while (ended := read_end(part)) is None:
        try:
            now = part.stat().st_size
        except OSError:
            now = size
        if now != size:
            since, size = time.monotonic(), now
        elif time.monotonic() - since > stall_s:
            raise DownloadEnded(f"the download wrote nothing for {stall_s:.0f} s")
        time.sleep(POLL_S)
    ok, error = ended
    if not ok:
        raise DownloadEnded(f"the download failed while decoding: {error}")
