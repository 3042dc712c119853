"""The environment a child process gets: ours without the database's secrets.

yt-dlp, the decoder and its workers never speak to PostgreSQL, so they do not see ``DATABASE_URL``
(it may hold a password), libpq's ``PG*`` variables (``PGPASSWORD``, ``PGPASSFILE``, …) or the
settings of ours that are secrets (cookies, YTDLP_ARGS). Everything else stays: PATH, HOME, the
locale, TMPDIR, the proxy variables yt-dlp reads, PYTHONPATH (yt-dlp plugins), SSL_CERT_FILE, XDG_*.

``child_env()`` is for ``create_subprocess_exec(..., env=child_env())``. A ``multiprocessing``
spawn cannot be given an environment (its children, and its resource tracker, copy the process's
own), so ``scrubbed_environ()`` takes the secrets out of ``os.environ`` while such children start
and puts them back after: the one moment anything reads them is ``Settings()``, at the CLI's start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# our settings that hold a secret, or a path to one (YTDLP_ARGS may carry a proxy's password);
# yt-dlp is given what it needs as arguments, never through these
_SECRETS = frozenset({"DATABASE_URL", "COOKIES_FILE", "COOKIES_FROM_BROWSER", "YTDLP_ARGS"})
_lock = threading.Lock()


def is_secret(name: str) -> bool:
    """Whether a child must not see the environment variable ``name`` (any case)."""
    upper = name.upper()
    return upper in _SECRETS or upper.startswith("PG")


def child_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (``os.environ``) without the secrets (``is_secret``)."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not is_secret(k)}


@contextmanager
def scrubbed_environ() -> Iterator[None]:
    """``os.environ`` without the secrets inside the block (children spawned there inherit it)."""
    with _lock:
        taken = {k: os.environ.pop(k) for k in [k for k in os.environ if is_secret(k)]}
        try:
            yield
        finally:
            os.environ.update(taken)
