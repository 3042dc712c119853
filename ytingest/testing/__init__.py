"""Test support shipped with the package: a local podcast channel with real audio (tests, demo, bench)."""

from ytingest.testing.channel import ChannelServer, Episode, sample_episodes, serve_in_thread

__all__ = ["ChannelServer", "Episode", "sample_episodes", "serve_in_thread"]
