"""The MCP server's own boundary (``ytingest/mcp_server.py``) with a stand-in engine: what the tools
declare, and that errors reach a client as one line with secrets masked."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from ytingest.engine import Engine
from ytingest.errors import StoreError
from ytingest.mcp_server import build_server
from ytingest.search import query_options

SECRET_DSN = "postgresql://ingest:hunter2@db.example:5432/yt"


class AwayEngine:
    """An engine whose database is unreachable, its error quoting the DSN with the password."""

    settings = SimpleNamespace(embed_model=None)

    def __init__(self) -> None:
        self.database = self

    async def _fail(self, *_: Any, **__: Any) -> Any:
        raise StoreError(f"cannot reach {SECRET_DSN}\nsecond line of detail")

    search = videos = channels = speakers = video_segments = _fail


def _server() -> Any:
    return build_server(cast(Engine, AwayEngine()))


def test_tools_are_the_five_reads_and_declare_themselves_read_only() -> None:
    """search, get_transcript and the three lists; each annotated read-only, not destructive."""
    tools = asyncio.run(_server().list_tools())
    assert {t.name for t in tools} == {
        "search",
        "get_transcript",
        "list_channels",
        "list_videos",
        "list_speakers",
    }
    assert all(t.annotations.read_only_hint and not t.annotations.destructive_hint for t in tools)
    search = next(t for t in tools if t.name == "search")
    properties = search.input_schema["properties"]
    assert set(properties) == {"query", *query_options()}  # SearchQuery's options, and its text
    for name, option in query_options().items():
        assert properties[name]["description"] == option.help  # declared once, on SearchQuery


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("search", {"query": "wheel"}),
        ("list_channels", {}),
        ("list_videos", {}),
        ("list_speakers", {}),
        ("get_transcript", {"video_id": "ep01"}),
    ],
)
def test_a_database_error_is_one_line_without_the_password(tool: str, arguments: dict[str, Any]) -> None:
    """The store's error reaches the client as a tool error: its first line, the password masked."""
    with pytest.raises(ToolError) as caught:
        asyncio.run(_server().call_tool(tool, arguments))
    message = str(caught.value)
    assert "hunter2" not in message and "\n" not in message
    assert "cannot reach postgresql://ingest:***@db.example" in message


def test_a_transcript_resource_error_masks_the_password_too() -> None:
    """Reading ytingest://transcript/ID while the database is away: a resource error, redacted."""
    with pytest.raises(ResourceError) as caught:
        asyncio.run(_server().read_resource("ytingest://transcript/ep01"))
    assert "hunter2" not in str(caught.value)


def test_schema_errors_are_one_line_per_field() -> None:
    """An unknown mode and a non-integer limit: one line naming both fields, no pydantic footer."""
    with pytest.raises(ToolError) as caught:
        asyncio.run(_server().call_tool("search", {"query": "x", "mode": "bogus", "limit": "many"}))
    message = str(caught.value)
    assert "\n" not in message and "errors.pydantic.dev" not in message
    assert "mode: Input should be 'hybrid', 'semantic' or 'keyword'" in message
    assert "limit: Input should be a valid integer" in message
