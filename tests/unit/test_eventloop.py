"""Event loop choice and the fork-safety setting it needs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from ytingest import Engine, Settings
from ytingest.eventloop import loop_factory
from ytingest.testing.fakes import FakeEmbedder, FakeTranscriber, MemoryStore


def _openblas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]


def test_uvloop_engine_keeps_openblas_single_threaded(tmp_path: Path) -> None:
    """Under uvloop the engine pins OpenBLAS to one thread (fork during a BLAS call deadlocks)."""
    uvloop = pytest.importorskip("uvloop")
    before = _openblas_threads()

    async def start_and_stop() -> None:
        engine = Engine(
            Settings(ytingest_home=tmp_path),
            database=MemoryStore(),
            transcriber=FakeTranscriber(),
            embedder=FakeEmbedder(),
        )
        async with engine:
            pass

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(start_and_stop())
        assert _openblas_threads() and set(_openblas_threads()) == {1}
    finally:
        threadpool_limits(max(before or [1]), user_api="blas")


def test_the_cli_uses_uvloop_where_installed() -> None:
    """uvloop is picked when importable; otherwise asyncio's own loop (e.g. on Windows)."""
    try:
        import uvloop
    except ImportError:
        assert loop_factory() is None
    else:
        assert loop_factory() is uvloop.new_event_loop


def test_loop_asyncio_setting_skips_uvloop() -> None:
    """LOOP=asyncio gives asyncio's own loop even where uvloop is installed."""
    assert loop_factory("asyncio") is None


def test_malloc_settings_take_effect_on_glibc_only() -> None:
    """Both malloc settings take effect on Linux (glibc) and say False elsewhere, never raising
    (in a child: they would change this test process for the tests after it)."""
    import subprocess
    import sys

    code = "from ytingest.malloc import limit_arenas as a, map_large_blocks as m; print(a(), m())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    glibc = str(sys.platform.startswith("linux"))
    assert out.split() == [glibc, glibc]
