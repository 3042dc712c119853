"""structlog setup for the CLI (the library itself never configures logging), with secret redaction."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

# user:password@ in any URL-like string, and key=value secrets in DSNs
_URL_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^/:@\s]*:)[^@\s/]*(?=@)")
_KV_PASSWORD = re.compile(r"(?P<pre>\bpassword\s*=\s*)[^\s&;]+", re.IGNORECASE)
_SECRET_KEYS = {"password", "database_url", "dsn", "cookies", "cookie", "token", "hf_token"}


def redact(text: str) -> str:
    """Mask passwords inside connection strings and ``password=...`` pairs."""
    text = _URL_PASSWORD.sub(r"\g<pre>***", text)
    return _KV_PASSWORD.sub(r"\g<pre>***", text)


def _redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "***"
        elif isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def configure_logging(fmt: Literal["json", "console", "auto"] = "auto", level: str = "info") -> None:
    """Send structlog events to stderr, one JSON object per line (or pretty on a terminal)."""
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    """The logger every ytingest module uses."""
    return structlog.get_logger("ytingest")
