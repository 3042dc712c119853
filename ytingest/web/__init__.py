"""``ytingest serve``: the read-only web app (search page, live run page, JSON API)."""

from ytingest.web.app import make_app, serve

__all__ = ["make_app", "serve"]
