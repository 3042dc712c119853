"""The options every yt-dlp child gets: the JS runtime, cookies, and the user's extra options.

Never logged: the command line holds cookie paths and may hold a proxy password.
"""

from __future__ import annotations

import shlex

from ytingest.config import Settings


def ytdlp_invocation(settings: Settings) -> tuple[str, ...]:
    """``yt-dlp`` and the options common to listing and downloading."""
    args = list(settings.ytdlp_command)
    if settings.cookies_file is not None:
        args += ["--cookies", str(settings.cookies_file)]
    if settings.cookies_from_browser:
        args += ["--cookies-from-browser", settings.cookies_from_browser]
    args += shlex.split(settings.ytdlp_args)
    return tuple(args)
