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
    you're not a bot") or ``"try_later"`` (YouTube's "This content isn't available, try again
    later"). All three mean the account or IP is past its request budget: every download pauses.
    """

    def __init__(self, message: str, retry_after: float | None = None, *, kind: str = "429") -> None:
        super().__init__(message, permanent=False)
        self.retry_after = retry_after
        self.kind = kind


class MediaForbiddenError(DownloadError):
    """HTTP 403 on the media URL: often an expired or throttled URL that a fresh extraction (the
    next yt-dlp run) replaces. The download stage retries it once; a second 403 in a row is final."""


class NotYetAvailableError(DownloadError):
    """An upcoming premiere or live event, or a stream that is live right now: not a failure of
    the video. The download stage leaves it pending so that a later run takes it.
    ``live_status``: ``"is_upcoming"`` or ``"is_live"``, as yt-dlp names them."""

    def __init__(self, message: str, *, live_status: str = "is_upcoming") -> None:
        super().__init__(message, permanent=False)
        self.live_status = live_status
