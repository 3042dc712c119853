"""``YtDlpDiscoverer``: the ``Source`` that lists a channel, playlist or feed with
``yt-dlp --flat-playlist``, and how one of its JSON entries becomes a ``VideoRef``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ytingest.childenv import child_env
from ytingest.errors import DiscoverError
from ytingest.items import VideoRef
from ytingest.logs import redact
from ytingest.sourcetext import CHANNEL_MAX, clean_line, public_url, with_userinfo_of
from ytingest.ytdlp.extractors import extractor_hint
from ytingest.ytdlp.failures import listing_hint
from ytingest.ytdlp.listing import upload_day_of
from ytingest.ytdlp.options import private_cookies, with_extractor_arg

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def safe_id(raw: str | None, url: str) -> str:
    """A video id safe for file names and logs: the site's id if it is plain, else a hash."""
    if raw and _SAFE_ID.fullmatch(raw):
        return raw
    return "h" + hashlib.sha256((raw or url).encode()).hexdigest()[:20]


def entry_to_ref(entry: dict[str, Any], channel: str) -> VideoRef | None:
    """Map one flat-playlist JSON entry to a VideoRef (None if it has no URL): its text cleaned
    (``sourcetext``), its URLs and ``channel`` without userinfo; a credential in the entry's URL,
    or in ``channel``'s for a URL on the same host, stays only in ``fetch_url``."""
    url = entry.get("url") or entry.get("webpage_url")
    if not isinstance(url, str) or not url:
        return None
    raw_id = entry.get("id")
    if not raw_id:  # the generic extractor smuggles the id into the URL
        from yt_dlp.utils import unsmuggle_url

        url_plain, data = unsmuggle_url(url, {})
        raw_id = (data or {}).get("force_videoid")
    else:
        url_plain = url
    webpage = entry.get("webpage_url") or url_plain
    if isinstance(webpage, str) and "#__youtubedl_smuggle" in webpage:
        webpage = webpage.split("#", 1)[0]
    duration = entry.get("duration")
    live = entry.get("live_status")
    fetch = with_userinfo_of(url, channel)
    return VideoRef(
        id=safe_id(str(raw_id) if raw_id else None, public_url(url)),
        url=public_url(url),
        title=clean_line(entry.get("title")),
        duration=float(duration) if isinstance(duration, int | float) else None,
        channel=public_url(channel),
        webpage_url=public_url(str(webpage)),
        upload_date=upload_day(entry),
        live_status=live if isinstance(live, str) else None,
        channel_name=_first_text(entry, "channel", "uploader", "playlist_channel", "playlist_uploader"),
        channel_id=_first_text(entry, "channel_id", "playlist_channel_id"),
        fetch_url=fetch if fetch != public_url(url) else "",
    )


def _first_text(entry: dict[str, Any], *keys: str) -> str:
    """The first of ``keys`` that holds a non-empty string (the entry's own fields come first, then
    those yt-dlp copies from the playlist onto each entry); else ``""``."""
    for key in keys:
        value = entry.get(key)
        if isinstance(value, str) and (text := clean_line(value, CHANNEL_MAX)):
            return text
    return ""


def upload_day(entry: dict[str, Any]) -> str | None:
    """The entry's upload date as ISO ``YYYY-MM-DD``: yt-dlp's ``upload_date`` (YYYYMMDD), else its
    ``timestamp`` (an RSS feed's ``pubDate``) read as UTC; None when neither is a real date."""
    return upload_day_of(entry.get("upload_date"), entry.get("timestamp"))


@dataclass
class YtDlpDiscoverer:
    """Runs ``yt-dlp --flat-playlist --lazy-playlist -j`` and yields entries as yt-dlp prints them.

    ``--lazy-playlist``: without it yt-dlp reads every page of a playlist before it prints the
    first entry, and an early stop (``--limit``, ``--since``, ``--new-only``) would save no request.
    ``timeout_s`` bounds yt-dlp's silence (the wait for its next line), not the listing: a
    consumer that waits on a full queue never trips it.
    """

    ytdlp: tuple[str, ...] = ("yt-dlp",)
    timeout_s: float = 600.0
    pick_extractor: bool = True  # pass the extractor found here (ytdlp/extractors.py)

    async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
        with tempfile.TemporaryFile() as errfile, tempfile.TemporaryDirectory() as scratch:
            # closed here, not left to the garbage collector: a listing stopped early kills its child now
            async with contextlib.aclosing(self._run(url, errfile, Path(scratch))) as refs:
                async for ref in refs:
                    yield ref

    def command(self, url: str, hint: list[str], scratch: Path) -> list[str]:
        """The child's argv (its cookies: a private copy in ``scratch``)."""
        # YouTube tabs: a date per entry ("2 weeks ago"), for --since; merged into the user's own
        args = with_extractor_arg([*self.ytdlp, *hint], "youtubetab", "approximate_date")
        args = private_cookies(args, scratch)
        return [*args, "--flat-playlist", "--lazy-playlist", "-j", "--no-warnings", "--", url]

    async def _run(self, url: str, errfile: Any, scratch: Path) -> AsyncGenerator[VideoRef, None]:
        hint = await asyncio.to_thread(extractor_hint, url) if self.pick_extractor else []
        try:
            args = await asyncio.to_thread(self.command, url, hint, scratch)
            proc = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, stderr=errfile, limit=16 * 1024 * 1024, env=child_env()
            )
        except OSError as exc:
            raise DiscoverError(f"cannot run {self.ytdlp[0]}: {exc.strerror or exc}") from None
        assert proc.stdout is not None
        try:
            while line := await self._next_line(proc.stdout, url):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                ref = entry_to_ref(entry, url) if isinstance(entry, dict) else None
                if ref is not None:
                    yield ref  # no timeout runs while the consumer holds this
            async with asyncio.timeout(self.timeout_s):
                rc = await proc.wait()
        except TimeoutError:
            raise DiscoverError(
                f"listing {public_url(url)}: yt-dlp did not exit within {self.timeout_s:.0f}s"
            ) from None
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if rc != 0:  # the caller decides whether a partial listing is enough
            reason = redact(last_error_line(read_all(errfile)))
            raise DiscoverError(f"cannot list {public_url(url)}: {reason}{listing_hint(reason)}")

    async def _next_line(self, stdout: asyncio.StreamReader, url: str) -> bytes:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await stdout.readline()
        except TimeoutError:
            raise DiscoverError(
                f"listing {public_url(url)}: yt-dlp printed nothing for {self.timeout_s:.0f}s"
            ) from None


def last_error_line(stderr: str) -> str:
    """yt-dlp's last ``ERROR:`` line, without the prefix; else its last line. (A progress line's
    ``\r`` can split an error: ``ERROR: \r[download] Got error: ...`` reads as the second half.)"""
    text = stderr.replace("ERROR: \r", "ERROR: ").replace("\r", "\n")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    line = (errors or lines or ["yt-dlp failed without a message"])[-1]
    return line.removeprefix("ERROR:").strip()[:500]


def read_all(file: Any) -> str:
    """Everything a child wrote to a temporary file (small: yt-dlp's stderr)."""
    file.seek(0)
    return str(file.read().decode(errors="replace"))
