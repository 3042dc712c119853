"""`ytingest serve` in a real browser: the system Chromium driven by Selenium, over real components.

The dialogue channel is ingested once for the module with the real CLI (yt-dlp, faster-whisper, the
GE2E speaker encoder, sentence-transformers, PostgreSQL + pgvector) and the sample voices enrolled;
`ytingest serve` runs as a subprocess; a throttled `ytingest stream --metrics-port` feeds the live run
page. No browser or driver is downloaded: Selenium gets the Debian binaries' paths, so Selenium
Manager never runs. With YTINGEST_SAVE_SCREENSHOTS=1 the screenshots are also copied to
docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import Cli, database_on, make_cli, stop_process, wait_until_serving
from ytingest.stages.description import PIPELINE
from ytingest.testing import ChannelServer, serve_in_thread
from ytingest.testing.channel import SAMPLES, Episode, sample_episodes
from ytingest.testing.dialogues import VOICES_DIR, dialogue_episodes

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "Chromium/chromedriver not installed: apt-get install chromium chromium-driver",
        allow_module_level=True,
    )
pytest.importorskip("selenium", reason="selenium is a dev dependency: pip install -e '.[dev]'")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "docs" / "screenshots"
QUERY, SPEAKER = "fresh bread on Saturday mornings", "Chen Wei"
XSS_ID = "xss01"
XSS_TITLE = '<script>window.__xss=1</script> <img src=x onerror="window.__xss=2"> Volcano notes'
XSS_TEXT = '<img src=x onerror="window.__xss=3"><script>window.__xss=4</script> hostile volcano transcript'


def console_errors(driver: WebDriver) -> list[str]:
    """The page's console errors since the last call (a blocked script or a JS exception shows here)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def save(driver: WebDriver, tmp: Path, name: str) -> Path:
    """A full-page screenshot under the test's tmp_path (also in docs/screenshots/ with
    YTINGEST_SAVE_SCREENSHOTS=1), taken through the DevTools protocol: no window resizing."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 2400), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = tmp / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    if os.environ.get("YTINGEST_SAVE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SHOTS / path.name)
    return path


@dataclass
class Site:
    """The ingested database, its CLI, the web app's URL and the port the live run will report on."""

    cli: Cli
    dsn: str
    url: str
    run_port: int
    driver: WebDriver
    server_log: Path
    notes: dict[str, Any] = field(default_factory=dict)


def _browser(profile: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations, JS errors
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.fixture(scope="module")
def site(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The dialogue channel ingested with the sample voices, `ytingest serve` running, a browser open."""
    root = tmp_path_factory.mktemp("web")
    voices = root / "voices"
    shutil.copytree(VOICES_DIR, voices)
    run_port, web_port = free_port(), free_port()
    log = root / "serve.log"
    with (
        database_on(pg_server, "ytingest_web") as dsn,
        serve_in_thread(ChannelServer(episodes=dialogue_episodes())) as channel,  # players stream from it
    ):
        cli = make_cli(root / "home", dsn)
        ingest = cli(
            "stream", channel.feed_url, "--voices-dir", str(voices), "--json", "--log-format", "json"
        )
        assert ingest.returncode == 0 and ingest.json()["done"] == 2, ingest.stderr[-2000:]
        args = ["serve", "--port", str(web_port), "--run-url", f"http://127.0.0.1:{run_port}"]
        with log.open("w") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "ytingest", *args, "--log-format", "json"],
                env=cli.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        driver = None
        try:
            url = f"http://127.0.0.1:{web_port}"
            wait_until_serving(server, f"{url}/api/channels", log=log)
            driver = _browser(root / "chromium-profile")
            yield Site(cli, dsn, url, run_port, driver, log)
        finally:
            if driver is not None:
                driver.quit()
            stop_process(server)


def test_search_page_finds_the_speakers_line_and_opens_the_player_at_its_second(
    site: Site, tmp_path: Path
) -> None:
    """Type a query, pick a speaker, submit: the first result is `search --json`'s first hit, and its
    link and the player seek to that segment's start."""
    cli_search = site.cli("search", QUERY, "--speaker", SPEAKER, "--json")
    assert cli_search.returncode == 0, cli_search.stderr[-2000:]
    expected = cli_search.json()
    assert expected and {h["speaker"] for h in expected} == {SPEAKER}
    first = expected[0]
    # independently of the CLI: the scripted turn in which Chen Wei says this line
    truth = json.loads((SAMPLES / "dialogue_truth.json").read_text())["dlg01-market"]
    turn = next(t for t in truth if t["speaker"] == SPEAKER and "Saturday" in t["text"])
    assert first["video_id"] == "dlg01-market" and turn["start"] - 2 <= first["start"] <= turn["end"]
    segment = next(r for r in site.cli("export", first["video_id"]).json() if r["idx"] == first["idx"])
    assert abs(segment["start"] - first["start"]) < 1e-3

    d = site.driver
    d.get(site.url + "/")
    box = d.find_element(By.ID, "q")
    box.clear()
    box.send_keys(QUERY)
    Select(d.find_element(By.ID, "speaker")).select_by_value(SPEAKER)
    d.find_element(By.ID, "go").click()
    WebDriverWait(d, 60).until(lambda drv: drv.find_elements(By.ID, "summary"))

    hits = d.find_elements(By.CSS_SELECTOR, "li.hit")
    assert {h.get_dom_attribute("data-speaker") for h in hits} == {SPEAKER}
    top = hits[0]
    assert (top.get_dom_attribute("data-video"), int(top.get_dom_attribute("data-idx"))) == (
        first["video_id"],
        first["idx"],
    )
    assert abs(float(top.get_dom_attribute("data-start")) - segment["start"]) < 1e-3
    link = top.find_element(By.CSS_SELECTOR, "a.open")
    assert link.get_dom_attribute("href") == first["url"] and "#t=" in first["url"]
    assert "Saturday" in top.find_element(By.CSS_SELECTOR, ".said").text
    assert top.find_elements(By.CSS_SELECTOR, ".said mark")  # the query's words are highlighted
    # grouped by video, best video first: the same hits as the CLI, in grouped rank order
    order: dict[str, list[tuple[str, int]]] = {}
    for h in expected:
        order.setdefault(h["video_id"], []).append((h["video_id"], h["idx"]))
    page = [(h.get_dom_attribute("data-video"), int(h.get_dom_attribute("data-idx"))) for h in hits]
    assert page == [key for keys in order.values() for key in keys]
    # the JSON API is `search --json`
    api = get_json(site.url + "/api/search?" + urllib.parse.urlencode({"q": QUERY, "speaker": SPEAKER}))
    assert [{**h, "score": None} for h in api] == [{**h, "score": None} for h in expected]
    assert all(abs(a["score"] - e["score"]) < 1e-3 for a, e in zip(api, expected, strict=True))

    player_id = link.get_dom_attribute("data-player")
    link.click()
    player = d.find_element(By.ID, player_id)
    assert player.get_dom_attribute("src").endswith(f"#t={segment['start']:.1f}")
    start = segment["start"]

    def seeked(drv: WebDriver) -> float | None:
        now = float(drv.execute_script("return arguments[0].currentTime", player))
        return now if start - 0.5 <= now <= start + 10 else None

    assert WebDriverWait(d, 30).until(seeked), d.execute_script("return arguments[0].currentTime", player)
    assert float(player.get_dom_attribute("data-seeked-to")) == pytest.approx(start)
    assert "playing" in top.get_dom_attribute("class")
    assert console_errors(d) == []
    save(d, tmp_path, "search-results")


def _read_run_page(d: WebDriver) -> dict[str, Any]:
    return d.execute_script(
        """
        const rows = {};
        for (const tr of document.querySelectorAll('#stages tbody tr')) {
          const cell = c => tr.querySelector('.' + c).textContent;
          rows[tr.dataset.stage] = {depth: +cell('depth'), capacity: +cell('capacity'), busy: cell('busy'),
                                    done: +cell('done'), rate: cell('rate'),
                                    colour: tr.querySelector('.name').style.borderLeftColor};
        }
        const canvas = document.getElementById('timeline');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
        return {state: document.getElementById('state').dataset.state, rows: rows,
                verdict: document.querySelector('#verdict .stage').textContent,
                advice: document.querySelector('#verdict .advice').textContent,
                done: document.querySelector('#totals .done').textContent, inked: inked,
                inModel: document.querySelector('#totals .in-model').textContent,
                eta: document.querySelector('#totals .eta').textContent,
                headline: document.getElementById('headline').textContent,
                live: !document.getElementById('live').hidden,
                xss: typeof window.__xss};
        """
    )


@pytest.fixture(scope="module")
def live_run(site: Site) -> Iterator[subprocess.Popen[str]]:
    """A throttled `stream --metrics-port` of three episodes, one titled with HTML; started on first use."""
    volcano = sample_episodes()[4]
    hostile = Episode(XSS_ID, XSS_TITLE, volcano.text, volcano.path, volcano.duration)
    episodes = [*sample_episodes()[:2], hostile]
    with serve_in_thread(ChannelServer(episodes, bandwidth=16_000)) as channel:
        args = ["stream", channel.feed_url, "--metrics-port", str(site.run_port), "--io-workers", "1"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "ytingest", *args, "--json", "--log-format", "json"],
            env=site.cli.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            yield proc
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err[-3000:]
            assert json.loads(out)["done"] == 3
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_run_page_follows_a_live_run(site: Site, live_run: subprocess.Popen[str], tmp_path: Path) -> None:
    """The run page, open during a throttled run, shows the queues moving, the verdict and the chart,
    the stored count rising video by video, and after the run its summary, not a connection error."""
    d = site.driver
    d.get(site.url + "/run")
    seen: list[dict[str, Any]] = []
    shot = None
    deadline = time.monotonic() + 180
    while live_run.poll() is None and time.monotonic() < deadline:
        view = _read_run_page(d)
        seen.append(view)
        done = {s: r["done"] for s, r in view["rows"].items()}
        if shot is None and view["state"] == "running" and 0 < done.get("store", 0) < 3 and view["inked"]:
            shot = save(d, tmp_path, "run-page")
        time.sleep(0.5)
    running = [v for v in seen if v["state"] == "running" and v["rows"] and v["live"]]
    assert len(running) >= 3, [v["state"] for v in seen]
    queues = {tuple((s, r["depth"], r["done"]) for s, r in sorted(v["rows"].items())) for v in running}
    assert len(queues) >= 3, queues  # the numbers changed while we watched
    assert any(r["depth"] > 0 for v in running for r in v["rows"].values())  # something waited in a queue
    assert max(v["rows"]["download"]["done"] for v in running) > min(
        v["rows"]["download"]["done"] for v in running
    )
    assert {"download", "asr", "store"} <= set(running[-1]["rows"])
    rgb = {st.name: "rgb({}, {}, {})".format(*bytes.fromhex(st.colour[1:])) for st in PIPELINE}
    assert {s: r["colour"] for s, r in running[-1]["rows"].items()} == rgb  # each its described colour
    assert all(v["verdict"] for v in running) and any(v["advice"] for v in running)
    assert running[-1]["inked"] > 1000  # the timeline was drawn
    assert all(v["xss"] == "undefined" for v in seen)
    assert shot is not None, "no moment mid-run with some videos stored and others not"
    stored = [int(v["done"]) for v in running]
    assert stored == sorted(stored) and {1, 2} <= set(stored), stored  # rising as each video lands
    assert any(v["eta"] not in ("?", "-", "–") for v in running), [v["eta"] for v in running]
    assert any(int(v["inModel"]) > 0 for v in running)
    # the stream has exited: the page shows the run's end from YTINGEST_HOME/last-run.json
    WebDriverWait(d, 15).until(lambda drv: "3 stored" in _read_run_page(drv)["headline"])
    end = _read_run_page(d)
    assert end["state"] == "finished" and end["headline"].startswith("finished: 3 stored, 0 failed")
    assert end["live"] and end["done"] == "3" and end["eta"] == "-"
    save(d, tmp_path, "run-finished")
    assert console_errors(d) == []
    site.notes["run_seen"] = len(running)


@pytest.fixture(scope="module")
def hostile(site: Site, live_run: subprocess.Popen[str]) -> str:
    """The live run's HTML-titled episode, stored; then one of its segments' text set to HTML in the
    database, since speech recognition cannot produce tags."""
    live_run.wait(timeout=240)

    async def poison() -> str:
        conn = await asyncpg.connect(site.dsn)
        try:
            title = await conn.fetchval("SELECT title FROM videos WHERE id = $1", XSS_ID)
            await conn.execute(
                "UPDATE segments SET text = $2 WHERE video_id = $1 AND idx = 0", XSS_ID, XSS_TEXT
            )
            return str(title)
        finally:
            await conn.close()

    return asyncio.run(poison())


def test_hostile_titles_and_text_are_shown_as_text(site: Site, hostile: str, tmp_path: Path) -> None:
    """A title with <script>/<img onerror> that came through yt-dlp, and a segment text made HTML in the
    database: both pages show them as text and no script runs."""
    assert hostile == XSS_TITLE  # stored as the feed gave it, tags and all
    d = site.driver
    d.get(site.url + "/")
    box = d.find_element(By.ID, "q")
    box.send_keys("hostile volcano transcript script window")
    box.submit()
    WebDriverWait(d, 60).until(lambda drv: drv.find_elements(By.ID, "summary"))
    group = d.find_element(By.CSS_SELECTOR, f'li.video[data-video="{XSS_ID}"]')
    assert group.find_element(By.CSS_SELECTOR, "h2.title").text == XSS_TITLE
    said = group.find_element(By.CSS_SELECTOR, 'li.hit[data-idx="0"] .said')
    assert said.text == XSS_TEXT and "<script>" in said.text
    assert said.find_elements(By.CSS_SELECTOR, "mark")  # highlighted, still text
    assert group.find_elements(By.CSS_SELECTOR, "img, script") == []
    assert d.execute_script("return typeof window.__xss") == "undefined"
    assert console_errors(d) == []  # not even a blocked inline script: there was none to block
    save(d, tmp_path, "xss-escaped")
    d.get(site.url + "/run")
    WebDriverWait(d, 10).until(
        lambda drv: drv.find_element(By.TAG_NAME, "body").get_dom_attribute("data-polls")
    )
    assert d.execute_script("return typeof window.__xss") == "undefined"
