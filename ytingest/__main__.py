"""``python -m ytingest`` is the CLI."""

from ytingest.cli import main

raise SystemExit(main())
