"""``ytingest mcp`` as an MCP client sees it: the official SDK's client over stdio (and streamable
HTTP) against a database that ``ytingest stream`` really filled from the local channel."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents

from tests.conftest import Cli, cli_in, stop_process
from ytingest.testing import ChannelServer, sample_episodes, serve_in_thread

pytestmark = pytest.mark.slow

EPISODES = ("ep04-bicycle", "ep06-bread")  # two, so a top hit has a wrong answer to beat
TOOLS = {"search", "get_transcript", "list_channels", "list_videos", "list_speakers"}


@dataclass
class Home:
    cli: Cli
    feed_url: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """Two sample episodes ingested once through `ytingest stream`."""
    cli = cli_in(tmp_path_factory.mktemp("mcp") / "home")
    episodes = [e for e in sample_episodes() if e.id in EPISODES]
    with serve_in_thread(ChannelServer(episodes=episodes)) as channel:
        r = cli("stream", channel.feed_url, "--json", "--no-dashboard")
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.json()["done"] == len(EPISODES)
        yield Home(cli, channel.feed_url)


def _data(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    assert isinstance(result.content[0], TextContent)
    text = json.loads(result.content[0].text)  # the text a client without structured output reads
    assert result.structured_content == text
    return text


def _error(result: CallToolResult) -> str:
    assert result.is_error
    assert isinstance(result.content[0], TextContent)
    return result.content[0].text


async def _session_checks(session: ClientSession, feed_url: str) -> None:
    await session.initialize()
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    assert all(t.annotations is not None and t.annotations.read_only_hint for t in tools.values())

    hits = _data(await session.call_tool("search", {"query": "the penny farthing had a huge front wheel"}))
    top = hits["hits"][0]
    assert top["video_id"] == "ep04-bicycle"
    assert "front wheel" in top["text"].lower()  # ASR may spell "farthing" otherwise
    assert top["url"].endswith(f"#t={int(top['start'])}")  # a link that opens the video at that second
    assert {"before", "after"} <= set(top)
    keyword = _data(
        await session.call_tool("search", {"query": "starter", "mode": "keyword", "video": "ep06-bread"})
    )
    assert keyword["hits"] and {h["video_id"] for h in keyword["hits"]} == {"ep06-bread"}
    assert all("starter" in h["text"].lower() for h in keyword["hits"])


async def _stdio_round_trip(h: Home) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "ytingest", "mcp", "--log-format", "json"], env=h.cli.env
    )
    faults: list[Exception] = []  # a line on stdout that is not JSON-RPC arrives here as an exception

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            faults.append(message)

    with (h.cli.home / "mcp-stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, message_handler=on_message) as session,
        ):
            await _session_checks(session, h.feed_url)

            channels = _data(await session.call_tool("list_channels", {}))["channels"]
            assert [(c["url"], c["done"]) for c in channels] == [(h.feed_url, len(EPISODES))]
            videos = _data(await session.call_tool("list_videos", {"limit": 1}))
            assert videos["total"] == len(EPISODES) and videos["next_offset"] == 1
            rest = _data(await session.call_tool("list_videos", {"offset": 1}))
            listed = [v["id"] for v in videos["videos"] + rest["videos"]]
            assert sorted(listed) == sorted(EPISODES)
            speakers = _data(await session.call_tool("list_speakers", {}))
            assert isinstance(speakers, dict)

            # a transcript in pages of 2 rows: contiguous, none duplicated, the same rows as the resource
            rows: list[dict[str, Any]] = []
            offset: int | None = 0
            while offset is not None:
                page = _data(
                    await session.call_tool(
                        "get_transcript", {"video_id": "ep06-bread", "offset": offset, "limit": 2}
                    )
                )
                assert page["video"]["id"] == "ep06-bread" and page["offset"] == offset
                rows += page["rows"]
                offset = page["next_offset"]
            assert len(rows) == page["total"] > 2
            assert [r["idx"] for r in rows] == list(range(len(rows)))
            uri = videos["videos"][0]["transcript"] if videos["videos"][0]["id"] == "ep06-bread" else None
            uri = uri or next(v["transcript"] for v in rest["videos"] if v["id"] == "ep06-bread")
            resource = await session.read_resource(uri)
            contents = resource.contents[0]
            assert isinstance(contents, TextResourceContents)
            assert [(r["idx"], r["text"]) for r in json.loads(contents.text)] == [
                (r["idx"], r["text"]) for r in rows
            ]
            templates = (await session.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["ytingest://transcript/{video_id}"]

            # bad arguments: tool errors of one line, no traceback
            for tool, args, says in [
                ("search", {"query": "-only"}, "empty query"),
                ("search", {"query": "wheel", "since": "yesterday"}, "not a date"),
                ("search", {"query": "wheel", "limit": 0}, "limit"),
                ("search", {"query": "wheel", "mode": "bogus"}, "mode: Input should be 'hybrid'"),
                ("search", {"query": "wheel", "limit": "many"}, "limit: Input should be a valid integer"),
                ("get_transcript", {"video_id": "nope"}, "not stored"),
                ("get_transcript", {"video_id": "ep06-bread", "limit": 5000}, "limit"),
            ]:
                message = _error(await session.call_tool(tool, args))
                assert says in message and "\n" not in message and "Traceback" not in message, message
    assert not faults, faults  # stdout carried the protocol and nothing else
    log = (h.cli.home / "mcp-stderr.log").read_text()
    assert "Traceback" not in log


def test_stdio_client_lists_tools_and_finds_the_phrase(home: Home) -> None:
    """Over stdio the SDK's client lists the five tools, gets the known phrase's episode as the top
    hit, pages a transcript, reads it as a resource, and gets one-line errors for bad arguments."""
    anyio.run(_stdio_round_trip, home)


async def _http_round_trip(url: str, feed_url: str) -> None:
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await _session_checks(session, feed_url)


def _post_initialize(url: str, *, host: str) -> int:
    """The HTTP status of a bare `initialize` POST that names ``host`` in its Host header."""
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    request = urllib.request.Request(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}).encode(),
        method="POST",
        headers={
            "Host": host,
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_http_serves_the_same_tools_and_refuses_foreign_hosts(home: Home) -> None:
    """`mcp --http` on 127.0.0.1 serves the same tools; a request naming another Host is refused;
    SIGTERM stops it with exit code 0 and no error logged."""
    errlog = home.cli.home / "mcp-http-stderr.log"
    with errlog.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ytingest", "mcp", "--http", "--port", "0", "--log-format", "json"],
            env=home.cli.env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/mcp", line)
        assert found, line
        url = found.group(0)
        anyio.run(_http_round_trip, url, home.feed_url)
        assert _post_initialize(url, host=urllib.parse.urlsplit(url).netloc) == 200
        assert _post_initialize(url, host="attacker.example") == 421  # DNS rebinding: refused
    finally:
        stop_process(proc)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0  # SIGTERM: a graceful stop
    events = [json.loads(line) for line in errlog.read_text().splitlines()]
    assert [e["url"] for e in events if e["event"] == "mcp_listening"] == [url]
    assert not [e for e in events if e["level"] in ("error", "critical")], events
