"""The command line: ``main`` (``main.py``) runs one command; ``args.py`` builds the parser, with
every setting flag declared once (``settings.py``); ``workers.py`` and ``maintain.py`` hold the
cluster and maintenance commands, ``output.py`` what they print."""
