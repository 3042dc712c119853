"""The web app's own logic (routes, parameters, escaping, headers, the status proxy) against a fake engine.

The engine here is a fake: these tests are about the web layer only. The real engine, database and
browser are in tests/e2e/test_web_browser.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from aiohttp import ClientConnectionError, ClientSession
from aiohttp.test_utils import TestClient, TestServer

from ytingest.config import Settings
from ytingest.errors import ConfigError, StoreError
from ytingest.items import AudioFile, PreparedAudio, SearchHit, VideoRef
from ytingest.monitor.gpu import GpuProbe
from ytingest.monitor.http import MetricsServer
from ytingest.monitor.last_run import finished_document, read_last_run, write_last_run
from ytingest.monitor.sampler import Sampler
from ytingest.pipeline.context import RunContext
from ytingest.search import SearchQuery
from ytingest.stages.decode import decode_worker
from ytingest.stages.description import PIPELINE, metrics_for
from ytingest.testing.fakes import MemoryStore
from ytingest.web import make_app, serve
from ytingest.web.app import host_name
from ytingest.web.render import clock, highlight, is_youtube, safe_url

HOSTILE_TITLE = "<script>alert(1)</script> vectors"
HOSTILE_TEXT = '"><img src=x onerror=alert(1)> the vector index & more'


def hit(video: str = "v1", idx: int = 0, **kw: Any) -> SearchHit:
    base: dict[str, Any] = {
        "video_id": video,
        "idx": idx,
        "title": f"Title of {video}",
        "url": f"http://127.0.0.1:9/audio/{video}.mp3#t={int(kw.get('start', 12.5))}",
        "media_url": f"http://127.0.0.1:9/audio/{video}.mp3",
        "channel": "http://127.0.0.1:9/feed.xml",
        "upload_date": "2026-01-01",
        "start": 12.5,
        "end": 15.0,
        "text": "a vector index finds neighbours",
        "before": "the sentence before",
        "after": "the sentence after",
        "speaker": "Ada Lovelace",
        "score": 0.91234,
    }
    base.update(kw)
    return SearchHit(**base)


@dataclass
class FakeEngine:
    """The engine methods the web app calls; records the queries it was asked."""

    hits: list[SearchHit] = field(default_factory=lambda: [hit("v1", 3), hit("v2", 0), hit("v1", 7)])
    queries: list[SearchQuery] = field(default_factory=list)
    fail: Exception | None = None
    channel_rows: list[dict[str, Any]] = field(
        default_factory=lambda: [{"url": "http://127.0.0.1:9/feed.xml", "done": 2, "failed": 0, "pending": 0}]
    )
    unknown: list[dict[str, Any]] = field(default_factory=lambda: [{"label": "unknown-1"}])
    settings: Any = field(
        default_factory=lambda: SimpleNamespace(ytingest_home=Path("/nonexistent/ytingest"))
    )

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        self.queries.append(query)
        if self.fail:
            raise self.fail
        return self.hits[: query.limit]

    async def videos(self, *, channel: str | None = None) -> list[dict[str, Any]]:
        rows = [
            {"id": "v1", "title": "One", "channel": "c1", "upload_date": date(2026, 1, 1), "segments": 4},
            {"id": "v2", "title": "Two", "channel": "c2", "upload_date": None, "segments": 2},
        ]
        return [r for r in rows if channel is None or r["channel"] == channel]

    async def channels(self) -> list[dict[str, Any]]:
        return self.channel_rows

    async def speakers(self) -> dict[str, Any]:
        return {"enrolled": [{"name": "Ada Lovelace"}, {"name": "Chen Wei"}], "unknown": self.unknown}


class Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in a.get("class", "").split())]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
async def client(engine: FakeEngine) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(engine))) as c:  # type: ignore[arg-type]
        yield c


async def test_api_search_returns_exactly_the_hits_as_search_json(
    client: TestClient[Any, Any], engine: FakeEngine
) -> None:
    """/api/search answers [h.to_dict() for h in hits] and passes every filter on as one SearchQuery."""
    params = {
        "q": '"vector index" neighbours',
        "limit": "2",
        "mode": "keyword",
        "speaker": "Ada Lovelace",
        "channel": "http://127.0.0.1:9/feed.xml",
        "video": "v1",
        "since": "2025-12-01",
        "until": "2026-02-01",
        "min_score": "0.25",
    }
    resp = await client.get("/api/search", params=params)
    assert resp.status == 200 and resp.content_type == "application/json"
    assert await resp.json() == [h.to_dict() for h in engine.hits[:2]]
    (q,) = engine.queries
    assert (q.text, q.limit, q.mode, q.speaker, q.video, q.min_score) == (
        '"vector index" neighbours',
        2,
        "keyword",
        "Ada Lovelace",
        "v1",
        0.25,
    )
    assert (q.since, q.until, q.channel) == (date(2025, 12, 1), date(2026, 2, 1), params["channel"])
    assert q.phrases == ("vector index",)


async def test_blank_filters_mean_no_filter(client: TestClient[Any, Any], engine: FakeEngine) -> None:
    """Empty <select> choices (speaker=, channel=) are no filter; the defaults are hybrid and 10."""
    resp = await client.get("/api/search", params={"q": "vector", "speaker": "", "channel": " ", "since": ""})
    assert resp.status == 200
    (q,) = engine.queries
    assert (q.mode, q.limit, q.speaker, q.channel, q.since) == ("hybrid", 10, None, None, None)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "missing q"),
        ({"q": "   "}, "missing q"),
        ({"q": "x", "limit": "ten"}, "whole number"),
        ({"q": "x", "limit": "0"}, "between 1 and 1000"),
        ({"q": "x", "limit": "5000"}, "between 1 and 1000"),
        ({"q": "x", "mode": "<b>fuzzy</b>"}, "unknown search mode"),
        ({"q": "x", "since": "yesterday"}, "not a date"),
        ({"q": "x", "since": "2026-02-01", "until": "2026-01-01"}, "is after"),
        ({"q": "x", "min_score": "high"}, "must be a number"),
        ({"q": "x", "min_score": "nan"}, "finite"),
        ({"q": "x" * 501}, "too long"),
    ],
)
async def test_bad_search_parameters_are_400_with_a_one_line_error(
    client: TestClient[Any, Any], engine: FakeEngine, params: dict[str, str], words: str
) -> None:
    """Every bad parameter: 400, {"error": one line naming the problem}, and no search is run."""
    resp = await client.get("/api/search", params=params)
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error"} and words in body["error"] and "\n" not in body["error"]
    assert engine.queries == []


async def test_videos_and_channels_api(client: TestClient[Any, Any]) -> None:
    """/api/videos (optionally ?channel=) and /api/channels return the engine's rows as JSON."""
    videos = await (await client.get("/api/videos")).json()
    assert [v["id"] for v in videos] == ["v1", "v2"] and videos[0]["upload_date"] == "2026-01-01"
    only = await (await client.get("/api/videos", params={"channel": "c2"})).json()
    assert [v["id"] for v in only] == ["v2"]
    channels = await (await client.get("/api/channels")).json()
    assert channels == [{"url": "http://127.0.0.1:9/feed.xml", "done": 2, "failed": 0, "pending": 0}]


async def test_search_page_groups_hits_by_video_with_seekable_links(client: TestClient[Any, Any]) -> None:
    """Results grouped per video (best first); each hit links to its second and a player per video."""
    resp = await client.get("/", params={"q": "vector index"})
    assert resp.status == 200 and resp.content_type == "text/html"
    page = Elements(await resp.text())
    assert [v["data-video"] for v in page.find("li", "video")] == ["v1", "v2"]
    hits = page.find("li", "hit")
    assert [(h["data-video"], h["data-idx"], h["data-start"]) for h in hits] == [
        ("v1", "3", "12.5"),
        ("v1", "7", "12.5"),
        ("v2", "0", "12.5"),
    ]
    links = page.find("a", "open")
    assert (
        links[0]["href"] == "http://127.0.0.1:9/audio/v1.mp3#t=12" and links[0]["data-player"] == "player-1"
    )
    assert links[2]["data-player"] == "player-2"
    players = page.find("audio", "player")
    assert [p["src"] for p in players] == [
        "http://127.0.0.1:9/audio/v1.mp3#t=12.5",
        "http://127.0.0.1:9/audio/v2.mp3#t=12.5",
    ]
    text = "".join(page.text)
    assert "0:12" in text and "Ada Lovelace" in text and "the sentence before" in text
    assert "3 results in 2 videos" in text


async def test_youtube_hits_open_youtube_at_the_second(engine: FakeEngine) -> None:
    """A YouTube hit has no audio player: its link is the hit's t= URL, in a new tab."""
    engine.hits = [hit("abc", url="https://www.youtube.com/watch?v=abc&t=3725s", start=3725.2, media_url="")]
    async with TestClient(TestServer(make_app(engine))) as c:  # type: ignore[arg-type]
        page = Elements(await (await c.get("/", params={"q": "vector"})).text())
    (link,) = page.find("a", "open")
    assert link["href"] == "https://www.youtube.com/watch?v=abc&t=3725s" and link["target"] == "_blank"
    assert page.find("audio") == [] and "1:02:05" in "".join(page.text)


async def test_filter_choices_come_from_speakers_and_channels(client: TestClient[Any, Any]) -> None:
    """The speaker select lists enrolled names and unknown labels; the chosen one stays selected."""
    page = Elements(
        await (await client.get("/", params={"q": "x", "speaker": "Chen Wei", "mode": "semantic"})).text()
    )
    options = [a for t, a in page.tags if t == "option"]
    values = [o["value"] for o in options]
    assert ["", "Ada Lovelace", "Chen Wei", "unknown-1"] == values[
        values.index("") : values.index("unknown-1") + 1
    ]
    assert "127.0.0.1:9/feed.xml" in values  # no name in the ledger: its host and path
    selected = [o["value"] for o in options if "selected" in o]
    assert selected == ["semantic", "Chen Wei"]


async def test_the_page_passes_the_query_language_on_and_keeps_it_in_the_form(
    client: TestClient[Any, Any], engine: FakeEngine
) -> None:
    """lang=de reaches the SearchQuery (word search in German) and stays in the language field."""
    page = Elements(await (await client.get("/", params={"q": "Häuser", "lang": "de"})).text())
    (q,) = engine.queries
    assert q.lang == "de"
    (field,) = [a for t, a in page.tags if t == "input" and a.get("name") == "lang"]
    assert field["value"] == "de"


async def test_hostile_title_and_text_are_shown_as_text(engine: FakeEngine) -> None:
    """Tags in a title or a segment reach the page escaped, also where a query term is highlighted."""
    engine.hits = [
        hit("x1", title=HOSTILE_TITLE, text=HOSTILE_TEXT, before="<b>bold</b>", speaker="<i>me</i>")
    ]
    async with TestClient(TestServer(make_app(engine))) as c:  # type: ignore[arg-type]
        body = await (await c.get("/", params={"q": "script img vector onerror"})).text()
    assert "<script>alert" not in body and "<img src=x" not in body and "<b>bold" not in body
    assert "<i>me" not in body
    assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt; <mark>vectors</mark>" in body
    marked = "&lt;<mark>img</mark> src=x <mark>onerror</mark>=alert(1)&gt; the <mark>vector</mark> index"
    assert f"&#34;&gt;{marked} &amp; more" in body
    page = Elements(body)
    assert page.find("script") == [{"src": "/static/search.js", "defer": ""}]
    assert page.find("img") == []


async def test_a_hostile_query_is_echoed_as_text(client: TestClient[Any, Any]) -> None:
    """The query box and the title repeat the query escaped."""
    body = await (await client.get("/", params={"q": '"><script>alert(1)</script>'})).text()
    assert "<script>alert" not in body and 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in body


@pytest.mark.parametrize("url", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<b>x</b>"])
async def test_a_non_http_link_never_becomes_a_link(engine: FakeEngine, url: str) -> None:
    """A stored URL that is not http(s) is rendered as '#', for the link and the player alike."""
    engine.hits = [hit("j1", url=url, media_url=url)]
    async with TestClient(TestServer(make_app(engine))) as c:  # type: ignore[arg-type]
        page = Elements(await (await c.get("/", params={"q": "x"})).text())
    assert [a["href"] for a in page.find("a", "open")] == ["#"]
    assert all(p["src"].startswith("#") for p in page.find("audio"))


def test_highlight_escapes_first_and_marks_whole_words_only() -> None:
    """Marks wrap words (and their inflections) case-insensitively, never parts of words or entities."""
    assert highlight("A <Vector> & vectors; lt amp", ["vector", "lt", "amp"]) == (
        "A &lt;<mark>Vector</mark>&gt; &amp; <mark>vectors</mark>; <mark>lt</mark> <mark>amp</mark>"
    )
    assert highlight("a vectorised index", ["vector"]) == "a vectorised index"
    assert (
        highlight("the vector index here", ["vector index", "index"]) == "the <mark>vector index</mark> here"
    )
    assert highlight("<b>", []) == "&lt;b&gt;"
    assert highlight("x.*y", [".*"]) == "x.*y"  # terms are literal, not patterns


def test_small_formatters() -> None:
    """m:ss below an hour, h:mm:ss above; YouTube hosts; only http(s) URLs pass."""
    assert [clock(0), clock(59.9), clock(61), clock(3600), clock(3725.2)] == [
        "0:00",
        "0:59",
        "1:01",
        "1:00:00",
        "1:02:05",
    ]
    assert is_youtube("https://www.youtube.com/watch?v=x&t=5s") and is_youtube("https://youtu.be/x?t=5")
    assert not is_youtube("https://notyoutube.com/x") and not is_youtube("http://127.0.0.1/a.mp3#t=5")
    assert safe_url("https://a/b") == "https://a/b" and safe_url("javascript:x") == "#"


async def test_bad_input_on_the_search_page_shows_the_form_and_the_error(
    client: TestClient[Any, Any],
) -> None:
    """The page answers 400 with the form still filled and the error as text."""
    resp = await client.get("/", params={"q": "vector", "since": "<b>soon</b>"})
    assert resp.status == 400
    body = await resp.text()
    assert 'id="error"' in body and "not a date: &#39;&lt;b&gt;soon&lt;/b&gt;&#39;" in body
    assert 'id="q"' in body and 'value="vector"' in body


async def test_a_database_failure_is_a_503_with_its_reason(
    client: TestClient[Any, Any], engine: FakeEngine
) -> None:
    """The engine's own errors (database down …) are a 503 with the one-line reason, no traceback."""
    engine.fail = StoreError("database unreachable: connection refused", transient=True)
    resp = await client.get("/api/search", params={"q": "vector"})
    assert resp.status == 503 and await resp.json() == {"error": "database unreachable: connection refused"}
    page = await client.get("/", params={"q": "vector"})
    assert page.status == 503 and "database unreachable" in await page.text()


async def test_every_response_carries_the_security_headers(client: TestClient[Any, Any]) -> None:
    """CSP (scripts and styles from this origin only) and nosniff on pages, JSON, static files, errors."""
    for path in (
        "/",
        "/run",
        "/api/search?q=x",
        "/api/search",
        "/static/run.js",
        "/static/style.css",
        "/nope",
    ):
        resp = await client.get(path)
        csp = resp.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "default-src 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", path


async def test_pages_have_no_inline_script_or_style(client: TestClient[Any, Any]) -> None:
    """Under that CSP inline code would not run: every script and style is a file under /static/."""
    for path in ("/?q=vector", "/run"):
        page = Elements(await (await client.get(path)).text())
        assert all(s.get("src", "").startswith("/static/") for s in page.find("script")), path
        assert page.find("style") == [] and not any("style" in a for _, a in page.tags), path
        assert not any(k.startswith("on") for _, a in page.tags for k in a), path


async def test_static_assets_are_served(client: TestClient[Any, Any]) -> None:
    """The JS and CSS ship in the package and are served with their types."""
    for path, kind in (
        ("/static/search.js", "javascript"),
        ("/static/run.js", "javascript"),
        ("/static/style.css", "css"),
    ):
        resp = await client.get(path)
        assert resp.status == 200 and kind in resp.content_type, path


async def test_only_get_routes(client: TestClient[Any, Any]) -> None:
    """The app is read-only: POST, PUT and DELETE are refused everywhere."""
    for method in ("POST", "PUT", "DELETE"):
        for path in ("/", "/api/search", "/api/status", "/run"):
            assert (await client.request(method, path)).status == 405, (method, path)


async def _api_status_served(engine: FakeEngine, doc: dict[str, Any], run_path: str = "") -> tuple[Any, int]:
    """``/api/status``'s answer while a real MetricsServer serves ``doc`` as the run's /status, and
    that server's port."""
    metrics = MetricsServer(lambda: doc)
    await metrics.start()
    try:
        app = make_app(engine, run_url=f"http://127.0.0.1:{metrics.port}{run_path}")  # type: ignore[arg-type]
        async with TestClient(TestServer(app)) as c:
            return await (await c.get("/api/status")).json(), metrics.port
    finally:
        await metrics.stop()


async def test_status_proxies_the_running_engine(engine: FakeEngine) -> None:
    """/api/status answers the document the engine's /status serves (state, snapshot, knobs)."""
    doc = {
        "state": "running",
        "snapshot": {
            "t": 3.0,
            "stages": {"download": {"depth": 4, "capacity": 8, "busy": 0.5}},
            "verdict": {"stage": "download", "advice": "raise IO_WORKERS"},
        },
        "knobs": {"io_workers": 4, "autotune": False},
    }
    body, port = await _api_status_served(engine, doc, run_path="/")
    assert {k: body[k] for k in ("state", "snapshot", "knobs")} == doc
    assert body["source"] == f"http://127.0.0.1:{port}/status" and body["message"] == ""


async def test_status_when_nothing_answers_is_a_document_not_a_500(engine: FakeEngine) -> None:
    """No engine at run_url: 200 {"state": "unreachable", "snapshot": null, "message"} within the timeout."""
    url = f"http://127.0.0.1:{free_port()}"
    async with TestClient(TestServer(make_app(engine, run_url=url))) as c:  # type: ignore[arg-type]
        resp = await asyncio.wait_for(c.get("/api/status"), 5)
        body = await resp.json()
    assert resp.status == 200 and body["state"] == "unreachable" and body["snapshot"] is None
    assert body["message"].startswith(f"no ytingest engine answers at {url}/status")


async def test_status_without_a_run_url_says_how_to_get_one(client: TestClient[Any, Any]) -> None:
    """Started without --run-url, /api/status says so instead of failing."""
    body = await (await client.get("/api/status")).json()
    assert body["state"] == "unconfigured" and "--run-url" in body["message"]


def test_a_run_url_must_be_http(engine: FakeEngine) -> None:
    """--run-url file:///etc/passwd (or no host) is a configuration error, not a proxy."""
    for bad in ("file:///etc/passwd", "http://", "127.0.0.1:9464"):
        with pytest.raises(ConfigError, match="run-url"):
            make_app(engine, run_url=bad)  # type: ignore[arg-type]


async def test_serve_answers_on_its_port_and_stops_when_cancelled(engine: FakeEngine) -> None:
    """serve() binds host:port, answers until cancelled, then frees the port."""
    port = free_port()
    task = asyncio.create_task(serve(engine, port=port))  # type: ignore[arg-type]
    try:
        async with ClientSession() as http:
            for _ in range(200):
                try:
                    resp = await http.get(f"http://127.0.0.1:{port}/api/channels")
                    break
                except ClientConnectionError:
                    await asyncio.sleep(0.02)
            assert resp.status == 200 and (await resp.json())[0]["url"].endswith("feed.xml")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again


async def test_only_loopback_host_names_are_answered(client: TestClient[Any, Any]) -> None:
    """A page whose own name was rebound to 127.0.0.1 sends its own Host: refused (DNS rebinding)."""
    for host, status in (("localhost:8765", 200), ("[::1]:8765", 200), ("evil.example:8765", 421)):
        resp = await client.get("/api/channels", headers={"Host": host})
        assert resp.status == status, host
    open_app = make_app(FakeEngine(), local_only=False)  # type: ignore[arg-type]
    async with TestClient(TestServer(open_app)) as c:
        assert (await c.get("/api/channels", headers={"Host": "box.lan:8765"})).status == 200


async def test_a_port_in_use_is_a_config_error(engine: FakeEngine) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1"):
            await serve(engine, port=taken.getsockname()[1])  # type: ignore[arg-type]


def test_host_header_parsing_is_strict() -> None:
    assert host_name("localhost:8765") == "localhost" and host_name("[::1]:80") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1"
    for bad in ("localhost:abc", "evil@localhost", "evil.com@127.0.0.1:80", "[::1", "", "a b:1", "x:1:2"):
        assert host_name(bad) not in {"localhost", "127.0.0.1", "::1"}, bad


async def test_a_malformed_host_is_refused_not_a_500(client: TestClient[Any, Any]) -> None:
    for host in ("localhost:abc", "evil@localhost:8765"):
        assert (await client.get("/api/channels", headers={"Host": host})).status == 421, host


def test_a_run_url_with_a_password_is_refused(engine: FakeEngine) -> None:
    with pytest.raises(ConfigError, match="without a user or password"):
        make_app(engine, run_url="http://me:secret@127.0.0.1:9464")  # type: ignore[arg-type]


async def test_nul_and_overflowing_dates_are_400s(client: TestClient[Any, Any]) -> None:
    for query in ("q=a%00b", "q=ok&speaker=x%00", "q=ok&since=99999999d", "q=ok&min_score=nan"):
        resp = await client.get(f"/api/search?{query}")
        assert resp.status == 400, query
        assert "error" in await resp.json()


# ---- the live run page tells the truth (issue 27) ----------------------------------------------

FINISHED_SNAPSHOT = {
    "t": 42.0,
    "done": 5,
    "failed": 1,
    "queued": 6,
    "stages": {},
    "in_model": [],
    "eta_s": 0.0,
}


async def test_after_the_run_the_page_shows_its_last_snapshot_and_summary(
    engine: FakeEngine, tmp_path: Path
) -> None:
    """The stream is gone: /api/status answers the run's last document from YTINGEST_HOME
    (finished, its summary and final numbers), not a connection error."""
    summary = {"done": 5, "failed": 1, "skipped": 0, "wall_seconds": 42.0, "failures": [{"video_id": "x"}]}
    write_last_run(tmp_path, finished_document("http://c/feed.xml", FINISHED_SNAPSHOT, {}, summary))
    engine.settings.ytingest_home = tmp_path
    url = f"http://127.0.0.1:{free_port()}"
    async with TestClient(TestServer(make_app(engine, run_url=url))) as c:  # type: ignore[arg-type]
        body = await (await c.get("/api/status")).json()
    assert body["state"] == "finished" and body["live"] == "unreachable"
    assert (
        body["summary"]["done"] == 5 and body["summary"]["failed"] == 1 and "failures" not in body["summary"]
    )
    assert body["snapshot"]["done"] == 5 and body["channel"] == "http://c/feed.xml" and body["finished_at"]
    assert body["message"] == ""


async def test_a_stream_that_just_finished_serves_its_summary(engine: FakeEngine) -> None:
    """Still answering after its run, the engine's finished document reaches the page whole."""
    doc = finished_document(
        "http://c/feed.xml", FINISHED_SNAPSHOT, {"io_workers": 2}, {"done": 5, "failed": 1}
    )
    body, _ = await _api_status_served(engine, doc)
    assert (body["state"], body["summary"], body["knobs"]) == (
        "finished",
        {"done": 5, "failed": 1},
        {"io_workers": 2},
    )


def test_a_half_written_or_foreign_last_run_file_is_no_run(tmp_path: Path) -> None:
    """Only a finished/failed document counts; garbage, other JSON or no file: None."""
    assert read_last_run(tmp_path) is None
    (tmp_path / "last-run.json").write_text('{"state": "running"')
    assert read_last_run(tmp_path) is None
    (tmp_path / "last-run.json").write_text('["finished"]')
    assert read_last_run(tmp_path) is None
    write_last_run(tmp_path, finished_document("c", None, {}, None, error="database gone"))
    assert read_last_run(tmp_path)["state"] == "failed"  # type: ignore[index]


async def test_with_no_run_going_the_page_is_a_calm_empty_state(engine: FakeEngine) -> None:
    """Nothing answers and no run has ended here: the document says how to start one, and the page
    has the hint and hides the (empty) live view until a snapshot comes."""
    port = free_port()
    async with TestClient(TestServer(make_app(engine, run_url=f"http://127.0.0.1:{port}"))) as c:  # type: ignore[arg-type]
        body = await (await c.get("/api/status")).json()
        page = Elements(await (await c.get("/run")).text())
    assert body["state"] == "unreachable" and body["snapshot"] is None
    assert body["start"] == f"ytingest stream <channel URL> --metrics-port {port}"
    assert [a.get("id") for a in page.find("p", "start")] == ["start"]
    assert [a.get("id") for t, a in page.tags if a.get("id") == "live"] == ["live"]
    script = (Path(__file__).parents[2] / "ytingest/web/static/run.js").read_text()
    assert '"no run"' in script and "No run is going." in script and "snap.eta_s" in script


async def test_channels_are_shown_by_name_and_searched_by_url(engine: FakeEngine) -> None:
    """The ledger's channel name where known, else host and path without the password; picking a
    name searches that channel's URL."""
    engine.channel_rows = [
        {"url": "https://www.youtube.com/@chana", "name": "Channel A"},
        {"url": "http://me:secret@127.0.0.1:9/b.xml", "name": None},
    ]
    async with TestClient(TestServer(make_app(engine))) as c:  # type: ignore[arg-type]
        page = Elements(await (await c.get("/", params={"q": "x", "channel": "Channel A"})).text())
    options = {a["value"] for t, a in page.tags if t == "option"}
    assert {"Channel A", "127.0.0.1:9/b.xml"} <= options
    assert not any("secret" in o or "youtube.com" in o for o in options)
    assert engine.queries[-1].channel == "https://www.youtube.com/@chana"


async def test_the_speaker_filter_is_per_channel(engine: FakeEngine) -> None:
    """Three channels' `unknown-1` are three voices: each offered with its channel, and picking one
    searches that label in that channel only; with another channel chosen it is a 400."""
    engine.channel_rows = [
        {"url": "http://a/feed.xml", "name": "Channel A"},
        {"url": "http://b/feed.xml", "name": "Channel B"},
        {"url": "http://c/feed.xml", "name": None},
    ]
    engine.unknown = [
        {"label": "unknown-1", "channel": u}
        for u in ("http://a/feed.xml", "http://b/feed.xml", "http://c/feed.xml")
    ]
    async with TestClient(TestServer(make_app(engine))) as c:  # type: ignore[arg-type]
        page = Elements(
            await (await c.get("/", params={"q": "x", "speaker": "unknown-1 (Channel B)"})).text()
        )
        clash = await c.get(
            "/", params={"q": "x", "speaker": "unknown-1 (Channel B)", "channel": "Channel A"}
        )
        clash_text = await clash.text()
    voices = [a["value"] for t, a in page.tags if t == "option" and a["value"].startswith("unknown-")]
    assert voices == ["unknown-1 (Channel A)", "unknown-1 (Channel B)", "unknown-1 (c/feed.xml)"]
    selected = [o["value"] for t, o in page.tags if t == "option" and "selected" in o]
    assert selected[-1] == "unknown-1 (Channel B)"
    assert (engine.queries[-1].speaker, engine.queries[-1].channel) == ("unknown-1", "http://b/feed.xml")
    assert clash.status == 400 and "another channel" in clash_text


async def test_the_eta_uses_the_files_length_when_the_listing_gave_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: FakeEngine
) -> None:
    """An RSS item without a duration: the decoder's first window gives the file's length, so the
    video has a fraction and the run an ETA (audio left over the model's rate) on /api/status."""
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    settings = Settings(ytingest_home=tmp_path)
    ctx = RunContext(settings, MemoryStore(), metrics_for(PIPELINE, settings))  # type: ignore[arg-type]
    ctx.metrics.queued, ctx.metrics.discovery_done = 1, True
    sampler = Sampler(ctx.metrics, tmp_path, GpuProbe())
    ref = VideoRef("v1", "http://127.0.0.1:9/audio/v1.mp3", "No length listed")
    assert ref.duration is None

    async def prepare(_path: Path) -> AsyncIterator[PreparedAudio]:
        yield PreparedAudio(np.zeros(16000 * 30, np.float32), index=0, last=False, total=120.0)

    inbox: asyncio.Queue[Any] = asyncio.Queue()
    for item in (AudioFile(ref, tmp_path / "v1.mp3", 1), None):
        inbox.put_nowait(item)
    await decode_worker(ctx, prepare, inbox, asyncio.Queue(), counters=ctx.metrics.stages["decode"])
    sampler.sample(((), 0.0, 0, 0))
    now[0] += 10.0
    ctx.metrics.progress.advance("v1", 30.0)  # the model: 30 s of audio in 10 s
    snap = sampler.sample(((), 0.0, 0, 0))
    doc = {"state": "running", "snapshot": snap.to_dict(), "knobs": {}}
    body, _ = await _api_status_served(engine, doc)
    video = body["snapshot"]["in_model"][0]
    assert (video["duration_s"], video["fraction"]) == (120.0, 0.25)
    assert body["snapshot"]["eta_s"] == pytest.approx(90.0 / 3.0)
