"""``YtDlpDownloader``: the ``Downloader`` that fetches one video's best audio with one
``yt-dlp -f bestaudio/best`` child, reports its progress, and says what a failure means."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ytingest.childenv import child_env
from ytingest.config import Settings
from ytingest.errors import DownloadError
from ytingest.items import AudioFile, VideoRef
from ytingest.logs import get_logger
from ytingest.sourcetext import CHANNEL_MAX, clean_line
from ytingest.ytdlp.extractors import extractor_hint
from ytingest.ytdlp.failures import (
    LIVE_FILTER,
    PO_TOKEN_ADVICE,
    classify,
    media_url_refusal,
    parse_retry_after,
)
from ytingest.ytdlp.lister import YtDlpDiscoverer, last_error_line, read_all
from ytingest.ytdlp.listing import upload_day_of
from ytingest.ytdlp.options import format_given, private_cookies, ytdlp_invocation

log = get_logger()

ProgressCallback = Callable[[str, int], None]
_PROGRESS = "ytingest-progress "
_RETRY_AFTER = "header: retry-after:"
# the video's own metadata, printed as JSON after the move (keys yt-dlp does not know are left out);
# format_id and vcodec tell a muxed fallback (format 18) from an audio-only format
_METADATA = "after_move:%(.{upload_date,channel,channel_id,uploader,uploader_id,format_id,vcodec})j"
FALLBACK_ADVICE = (
    "YouTube's audio-only formats need a PO token (SABR streaming), so yt-dlp fell back to a format "
    "with video (18: 360p, larger downloads, same audio track); the fix: " + PO_TOKEN_ADVICE
)


@dataclass
class YtDlpDownloader:
    """Downloads one video's best audio into ``dest/<id>.<ext>`` (``dest`` exists) with yt-dlp.

    One attempt = one yt-dlp run with its own retries off: the download stage decides about
    retries. ``on_progress(video_id, downloaded_bytes)`` follows yt-dlp's progress lines;
    ``--print-traffic`` is parsed only for a 429's Retry-After header and never logged.
    The video's upload date and channel come from a second ``--print-to-file`` (JSON).
    ``-f bestaudio/best`` unless the invocation already holds an audio-only ``-f`` (YTDLP_ARGS).
    ``--match-filter !is_live``: a stream that is live right now is not recorded until the timeout;
    yt-dlp skips it (exit 0, no file, its "does not pass filter" line on stdout, hence no
    ``--quiet``) and it becomes a ``NotYetAvailableError``. The child gets a private copy of the
    cookies file in its scratch folder (``private_cookies``).
    """

    ytdlp: tuple[str, ...] = ("yt-dlp",)
    timeout_s: float = 1800.0
    on_progress: ProgressCallback | None = None
    pick_extractor: bool = True  # pass the extractor found here (ytdlp/extractors.py)

    async def download(self, ref: VideoRef, dest: Path) -> AudioFile:
        if (refused := media_url_refusal(ref.download_url)) is not None:  # file:, data: … never reach yt-dlp
            raise refused
        hint = await asyncio.to_thread(extractor_hint, ref.download_url) if self.pick_extractor else []
        with tempfile.TemporaryFile() as errfile, tempfile.TemporaryDirectory() as scratch:
            where, meta = Path(scratch) / "path", Path(scratch) / "meta"
            args = [
                *await asyncio.to_thread(private_cookies, self.ytdlp, Path(scratch)),
                *hint,
                *([] if format_given(self.ytdlp) else ["-f", "bestaudio/best"]),
                "--no-playlist",
                "--no-mtime",
                "--no-overwrites",
                "--restrict-filenames",
                "--retries",
                "0",
                "--fragment-retries",
                "0",
                "--extractor-retries",
                "0",
                "--match-filter",
                LIVE_FILTER,
                "-o",
                str(dest / f"{ref.id}.%(ext)s"),
                "--print-to-file",
                "after_move:filepath",
                str(where),
                "--print-to-file",
                _METADATA,
                str(meta),
                "--print-traffic",
                "--progress",
                "--newline",
                "--progress-template",
                f"download:{_PROGRESS}%(progress.downloaded_bytes)s",
                "--",
                ref.download_url,  # with the listing's credential, if any: never logged
            ]
            try:
                proc = await asyncio.create_subprocess_exec(
                    *args, stdout=asyncio.subprocess.PIPE, stderr=errfile, env=child_env()
                )
            except OSError as exc:
                raise DownloadError(f"cannot run {self.ytdlp[0]}: {exc.strerror or exc}") from None
            try:
                async with asyncio.timeout(self.timeout_s):
                    retry_after, filtered = await self._read_output(proc, ref.id)
                    await proc.wait()
            except TimeoutError:
                raise DownloadError(f"download took longer than {self.timeout_s:.0f}s") from None
            finally:
                if proc.returncode is None:  # timeout or cancellation: reap the child
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await asyncio.shield(proc.wait())
            if proc.returncode != 0:
                raise classify(last_error_line(read_all(errfile)), retry_after)
            printed = where.read_text(errors="replace") if where.exists() else ""
            metadata = meta.read_text(errors="replace") if meta.exists() else ""
        if filtered and not printed.strip():  # skipped by --match-filter: live right now
            raise classify(filtered)
        audio = _checked_file(printed, dest, ref)
        return with_metadata(audio, metadata)

    async def _read_output(self, proc: asyncio.subprocess.Process, video_id: str) -> tuple[float | None, str]:
        """Report progress; return the last Retry-After the site sent, if any, and yt-dlp's
        "does not pass filter (!is_live)" line, if it printed one."""
        assert proc.stdout is not None
        retry_after, filtered = None, ""
        while line := (await proc.stdout.readline()).decode(errors="replace"):
            if line.startswith(_PROGRESS):
                value = line[len(_PROGRESS) :].strip()
                if self.on_progress is not None and value.isdigit():
                    self.on_progress(video_id, int(value))
            elif line.lower().startswith(_RETRY_AFTER):
                retry_after = parse_retry_after(line[len(_RETRY_AFTER) :])
            elif f"does not pass filter ({LIVE_FILTER})" in line:
                filtered = line.strip()
        return retry_after, filtered


def _checked_file(printed: str, dest: Path, ref: VideoRef) -> AudioFile:
    """The file yt-dlp says it wrote, if it is inside ``dest`` and not empty."""
    lines = [ln for ln in printed.splitlines() if ln.strip()]
    if not lines:
        raise DownloadError("yt-dlp finished without writing a file")
    path = Path(lines[-1].strip()).resolve()
    if not path.is_relative_to(dest.resolve()):
        raise DownloadError("yt-dlp wrote outside the audio folder; refusing the file")
    try:
        size = path.stat().st_size
    except OSError:
        raise DownloadError("downloaded file is missing") from None
    if size == 0:
        path.unlink(missing_ok=True)
        raise DownloadError("downloaded file is empty", permanent=True)
    return AudioFile(video=ref, path=path, size=size)


def with_metadata(audio: AudioFile, printed: str) -> AudioFile:
    """``audio`` with the upload date (ISO), channel and, when it carries video, the format, from
    yt-dlp's printed JSON, where known (the text cleaned: ``sourcetext.clean_line``)."""
    info: dict[str, Any] = {}
    for line in reversed(printed.splitlines()):
        try:
            loaded = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(loaded, dict):
            info = loaded
            break
    day = upload_day_of(info.get("upload_date"), info.get("timestamp"))
    name = info.get("channel") or info.get("uploader") or ""
    channel_id = info.get("channel_id") or info.get("uploader_id") or ""
    vcodec = str(info.get("vcodec") or "none")
    return replace(
        audio,
        upload_date=day or audio.upload_date,
        channel_name=clean_line(name, CHANNEL_MAX) or audio.channel_name,
        channel_id=clean_line(channel_id, 100) or audio.channel_id,
        video_format=""
        if vcodec == "none"
        else clean_line(f"{info.get('format_id') or '?'} ({vcodec})", 100),
    )


def ytdlp_sources(settings: Settings) -> tuple[YtDlpDiscoverer, YtDlpDownloader]:
    """yt-dlp's lister and downloader, sharing the command and the options every child gets (a bad
    YTDLP_ARGS option is a ConfigError here)."""
    ytdlp = ytdlp_invocation(settings)
    return YtDlpDiscoverer(ytdlp), YtDlpDownloader(ytdlp, settings.download_timeout_s)
