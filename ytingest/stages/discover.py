"""discover: ``yt-dlp --flat-playlist`` streams a channel's entries as ``VideoRef`` items."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from ytingest.errors import DiscoverError
from ytingest.items import VideoRef
from ytingest.logs import get_logger
from ytingest.pipeline.context import RunContext
from ytingest.stages.extractors import extractor_hint

log = get_logger()

SHORTS_MAX_SECONDS = 60.0
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Listing:
    """What a run takes from a channel's listing (``stream``'s listing flags)."""

    limit: int | None = None  # the first N entries of the listing (newest first)
    skip_shorts: bool = False
    since: date | None = None  # upload date on or after
    until: date | None = None  # upload date on or before
    new_only: bool = False  # stop after NEW_ONLY_STREAK already-stored videos in a row
    tabs: tuple[str, ...] | None = None  # None: Settings.tabs

    def to_log(self) -> dict[str, Any]:
        """The fields that are set, dates as ISO strings (for the ``run_started`` event)."""
        return {
            name: value.isoformat() if isinstance(value, date) else value
            for name in self.__slots__
            if (value := getattr(self, name))
        }


class Discoverer(Protocol):
    def discover(self, url: str) -> AsyncGenerator[VideoRef, None]: ...


def safe_id(raw: str | None, url: str) -> str:
    """A video id safe for file names and logs: the site's id if it is plain, else a hash."""
    if raw and _SAFE_ID.fullmatch(raw):
        return raw
    return "h" + hashlib.sha256((raw or url).encode()).hexdigest()[:20]


def entry_to_ref(entry: dict[str, Any], channel: str) -> VideoRef | None:
    """Map one flat-playlist JSON entry to a VideoRef (None if it has no URL)."""
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
    return VideoRef(
        id=safe_id(str(raw_id) if raw_id else None, url),
        url=url,
        title=" ".join(str(entry.get("title") or "").split())[:500],
        duration=float(duration) if isinstance(duration, int | float) else None,
        channel=channel,
        webpage_url=str(webpage),
        upload_date=upload_day(entry),
    )


def upload_day(entry: dict[str, Any]) -> str | None:
    """The entry's upload date as ISO ``YYYY-MM-DD``: yt-dlp's ``upload_date`` (YYYYMMDD), else its
    ``timestamp`` (an RSS feed's ``pubDate``) read as UTC; None when the listing has neither."""
    raw = entry.get("upload_date")
    if isinstance(raw, str) and len(raw) == 8 and raw.isdigit():
        return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
    stamp = entry.get("timestamp")
    if isinstance(stamp, int | float):
        return datetime.fromtimestamp(stamp, UTC).date().isoformat()
    return None


def is_short(ref: VideoRef) -> bool:
    """A YouTube Short: a /shorts/ URL or a known duration under a minute."""
    if "/shorts/" in ref.url or "/shorts/" in ref.webpage_url:
        return True
    return ref.duration is not None and ref.duration < SHORTS_MAX_SECONDS


@dataclass
class ListDiscoverer:
    """Videos already known (``ytingest retry``): no listing, the refs come from the ledger."""

    refs: list[VideoRef]

    async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
        for ref in self.refs:
            yield ref


@dataclass
class YtDlpDiscoverer:
    """Runs ``yt-dlp --flat-playlist -j`` and yields entries as yt-dlp prints them."""

    ytdlp: tuple[str, ...] = ("yt-dlp",)
    timeout_s: float = 600.0
    pick_extractor: bool = True  # pass the extractor found here (stages/extractors.py)

    async def discover(self, url: str) -> AsyncGenerator[VideoRef, None]:
        with tempfile.TemporaryFile() as errfile:
            async for ref in self._run(url, errfile):
                yield ref

    async def _run(self, url: str, errfile: Any) -> AsyncGenerator[VideoRef, None]:
        hint = await asyncio.to_thread(extractor_hint, url) if self.pick_extractor else []
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.ytdlp,
                *hint,
                "--flat-playlist",
                "-j",
                "--no-warnings",
                "--",
                url,
                stdout=asyncio.subprocess.PIPE,
                stderr=errfile,
                limit=16 * 1024 * 1024,
            )
        except OSError as exc:
            raise DiscoverError(f"cannot run {self.ytdlp[0]}: {exc.strerror or exc}") from None
        assert proc.stdout is not None
        seen = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while line := await proc.stdout.readline():
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    ref = entry_to_ref(entry, url) if isinstance(entry, dict) else None
                    if ref is not None:
                        seen += 1
                        yield ref
                rc = await proc.wait()
        except TimeoutError:
            raise DiscoverError(f"listing {url} took longer than {self.timeout_s:.0f}s") from None
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if rc != 0 and seen == 0:
            raise DiscoverError(f"cannot list {url}: {last_error_line(read_all(errfile))}")


def last_error_line(stderr: str) -> str:
    """yt-dlp's last ``ERROR:`` line, without the prefix; else its last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    line = (errors or lines or ["yt-dlp failed without a message"])[-1]
    return line.removeprefix("ERROR:").strip()[:500]


def read_all(file: Any) -> str:
    """Everything a child wrote to a temporary file (small: yt-dlp's stderr)."""
    file.seek(0)
    return str(file.read().decode(errors="replace"))


async def run_discovery(
    ctx: RunContext,
    discoverer: Discoverer,
    url: str,
    outbox: asyncio.Queue[VideoRef | None],
    listing: Listing | None = None,
) -> None:
    """Prefilter entries as they are listed (shorts, --limit, already stored) and queue the rest."""
    listing = listing or Listing()
    limit, skip_shorts = listing.limit, listing.skip_shorts
    taken = 0
    seen: set[str] = set()
    async with contextlib.aclosing(discoverer.discover(url)) as refs:
        async for ref in refs:
            if ctx.stopping.is_set() or (limit is not None and taken >= limit):
                break
            if ref.id in seen:
                continue
            seen.add(ref.id)
            if skip_shorts and is_short(ref):
                ctx.metrics.skipped += 1
                log.info("video_skipped", video_id=ref.id, reason="short")
                continue
            taken += 1
            if reason := await ctx.ledger.skip_reason(ref.id):
                ctx.metrics.skipped += 1
                log.info("video_skipped", video_id=ref.id, reason=reason)
                continue
            await ctx.ledger.register_video(ref)
            log.info("video_queued", video_id=ref.id, title=ref.title, duration=ref.duration)
            ctx.metrics.queued += 1
            await outbox.put(ref)
    ctx.metrics.discovery_done = True
    log.info("discovery_done", channel=url, listed=len(seen), queued=taken)
    await outbox.put(None)
