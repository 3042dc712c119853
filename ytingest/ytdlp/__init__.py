"""Everything that speaks yt-dlp: the options every child gets, its plugins, the extractor hint,
what its listings and failures mean, and the ``Source`` and ``Downloader`` built on it."""
