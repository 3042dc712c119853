"""One root error; each stage maps foreign exceptions into its own subclass at the boundary."""

from __future__ import annotations


class YtingestError(Exception):
    """Root of every error ytingest raises on purpose. ``str(err)`` is a one-line message."""


class ConfigError(YtingestError):
    """Bad settings, an unknown model, an unreachable database: the run cannot start."""


class DiscoverError(YtingestError):
    """The channel URL could not be listed (bad URL, unsupported site, network)."""


class DownloadError(YtingestError):
    """One video's audio could not be downloaded. ``permanent``: trying again will not help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class TranscribeError(YtingestError):
    """One video's audio could not be decoded (the file is bad: quarantined, not retried)."""


class ModelError(YtingestError):
    """The ASR model failed on audio that decoded fine (a runtime or driver error): the video
    fails for this run and a later run retries it; its audio is kept, never quarantined.
    ``out_of_memory``: the batch did not fit even at size 1."""

    def __init__(self, message: str, *, out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.out_of_memory = out_of_memory


class EmbedError(YtingestError):
    """A batch of segments could not be embedded. ``out_of_memory``: smaller batches may fit."""

    def __init__(self, message: str, *, out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.out_of_memory = out_of_memory


class StoreError(YtingestError):
    """The database refused or lost a write. ``transient``: the connection failed, not the data."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class RateLimitedError(DownloadError):
    """The site answered 429 / throttled us. ``retry_after`` is its hint in seconds, if any.

    ``kind``: ``"429"`` (HTTP Too Many Requests), ``"bot_check"`` (YouTube's "Sign in to confirm
    you're not a bot"), ``"captcha"`` (a captcha before playback) or ``"try_later"`` (YouTube's
    "This content isn't available, try again later"). All mean the account or IP is past its
    request budget: every download pauses. ``pause_s``: the least pause the message itself names
    (yt-dlp's "rate-limited by YouTube for up to an hour": 3600), else 0.
    """

    def __init__(
        self, message: str, retry_after: float | None = None, *, kind: str = "429", pause_s: float = 0.0
    ) -> None:
        super().__init__(message, permanent=False)
        self.retry_after = retry_after
        self.kind = kind
        self.pause_s = pause_s

    @property
    def bot_check(self) -> bool:
        """YouTube doubts this is a person (bot check, captcha): a pause alone may not end it."""
        return self.kind in ("bot_check", "captcha")


class MediaForbiddenError(DownloadError):
    """HTTP 403 on the media URL: an expired URL that a fresh extraction (the next yt-dlp run)
    replaces, or (2025-26, mostly) a YouTube client change yt-dlp has not caught up with. Never
    permanent: retried within DOWNLOAD_ATTEMPTS, its message says to upgrade yt-dlp."""


class NotYetAvailableError(DownloadError):
    """An upcoming premiere or live event, or a stream that is live right now: not a failure of
    the video. The download stage leaves it pending so that a later run takes it.
    ``live_status``: ``"is_upcoming"`` or ``"is_live"``, as yt-dlp names them."""

    def __init__(self, message: str, *, live_status: str = "is_upcoming") -> None:
        super().__init__(message, permanent=False)
        self.live_status = live_status


def first_error(group: BaseExceptionGroup[YtingestError]) -> YtingestError:
    """The first ytingest error in a (possibly nested) exception group."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, YtingestError)
    return exc
