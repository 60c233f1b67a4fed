"""The analysts' page end to end in headless Chromium, driven over the DevTools protocol.

The browser types into the page and clicks the button like a person, and the test reads what a
person sees: rendered text, bar widths, highlighted words, passages. Skipped when no Chromium
is installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from classifier import NarrativeClassifier
from service.app import create_app
from tests.conftest import SAN, SEED_ARTICLE
from tests.service_fixtures import make_settings, save_test_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary installed")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--window-size=1200,900",
    "--remote-debugging-pipe",
)
SANCTIONS_TEXT = "فرضت وزارة الخزانة عقوبات جديدة على شركات شحن متهمة بنقل النفط"


class CDPError(RuntimeError):
    """The browser answered a command with an error."""


class Chromium:
    """A headless Chromium spoken to over --remote-debugging-pipe (fds 3 and 4 of the child).

    A pipe needs no port, no polling for the browser to come up and no extra dependency:
    messages are JSON objects separated by NUL bytes.
    """

    def __init__(self, binary: str, profile: Path, log: Path) -> None:
        to_browser, self._writer = os.pipe()
        self._reader, from_browser = os.pipe()
        # Copies above fd 100 cannot collide with 3 and 4 while being moved there.
        high_in = fcntl.fcntl(to_browser, fcntl.F_DUPFD_CLOEXEC, 100)
        high_out = fcntl.fcntl(from_browser, fcntl.F_DUPFD_CLOEXEC, 100)

        def place_pipes() -> None:
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        with log.open("wb") as log_file:
            self.proc = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                close_fds=False,  # fds 3 and 4 must survive; everything else is close-on-exec
                preexec_fn=place_pipes,
            )
        for fd in (to_browser, from_browser, high_in, high_out):
            os.close(fd)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the browser did not answer in time")
            ready, _, _ = select.select([self._reader], [], [], remaining)
            if ready:
                chunk = os.read(self._reader, 1 << 16)
                if not chunk:
                    raise CDPError("the browser closed the pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Send a command and wait for its answer, keeping the events that arrive meanwhile."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._last_id:
                if "error" in answer:
                    raise CDPError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        """Wait for an event (or take it if it already arrived)."""
        for event in self.events:
            if event.get("method") == method:
                self.events.remove(event)
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def close(self) -> None:
        # A browser that is already gone cannot answer; killing it below is all that is left.
        with contextlib.suppress(CDPError, TimeoutError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._writer)
        os.close(self._reader)


class Page:
    """One tab, driven through its CDP session."""

    def __init__(self, browser: Chromium) -> None:
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.requested: list[str] = []
        self.send("Page.enable")
        self.send("Network.enable")

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.browser.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """Run JavaScript in the page (awaiting a promise) and return its JSON value."""
        answer = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            self.session,
            timeout=timeout,
        )
        if "exceptionDetails" in answer:
            raise CDPError(json.dumps(answer["exceptionDetails"])[:2000])
        return answer["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type into it as keyboard text input."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def click(self, selector: str) -> None:
        """Click the middle of an element with the mouse."""
        box = self.evaluate(
            f"""(() => {{
                const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
                return {{x: r.x + r.width / 2, y: r.y + r.height / 2}};
            }})()"""
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            event = {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1}
            self.send("Input.dispatchMouseEvent", event)

    def requested_urls(self) -> list[str]:
        events = self.browser.events
        return [
            e["params"]["request"]["url"]
            for e in events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(data["data"]))


# Resolves once the page has finished (results shown or an error shown), via DOM mutations.
WAIT_FOR_ANSWER = """
new Promise((resolve, reject) => {
  const done = () => !document.getElementById('classify').disabled &&
    (!document.getElementById('results').hidden || !document.getElementById('error').hidden);
  const timer = setTimeout(() => reject(new Error('no answer shown in 30 s')), 30000);
  const finish = () => { clearTimeout(timer); resolve(true); };
  if (done()) return finish();
  const observer = new MutationObserver(() => { if (done()) { observer.disconnect(); finish(); } });
  observer.observe(document.body, {attributes: true, childList: true, subtree: true});
})
"""
WAIT_FOR_READY = """
new Promise((resolve) => {
  if (document.body.dataset.ready) return resolve(true);
  new MutationObserver((_, observer) => {
    if (document.body.dataset.ready) { observer.disconnect(); resolve(true); }
  }).observe(document.body, {attributes: true});
})
"""
# What a person sees: only elements that are rendered, with their on-screen text and sizes.
READ_RESULTS = """
(() => {
  const visible = (el) => !!el && el.getClientRects().length > 0 &&
    getComputedStyle(el).visibility !== 'hidden';
  const rows = [...document.querySelectorAll('#labels .label-row')].filter(visible).map((row) => {
    const bar = row.querySelector('.bar');
    const fill = row.querySelector('.bar-fill');
    return {
      label: row.dataset.label,
      text: row.innerText,
      assigned: row.classList.contains('assigned'),
      score: row.querySelector('.score').innerText,
      fill: fill.getBoundingClientRect().width / bar.getBoundingClientRect().width,
    };
  });
  const marks = [...document.querySelectorAll('#highlighted mark')].filter(visible)
    .map((m) => ({text: m.innerText, label: m.dataset.label,
                  background: getComputedStyle(m).backgroundColor}));
  const passages = [...document.querySelectorAll('#passages .passage')].filter(visible)
    .map((p) => p.innerText);
  const errorBox = document.getElementById('error');
  return {
    rows, marks, passages,
    results: visible(document.getElementById('results')),
    passagesTitle: document.getElementById('passages-title').innerText,
    error: visible(errorBox) ? errorBox.innerText : null,
    highlighted: document.getElementById('highlighted').innerText,
    legend: document.getElementById('legend').innerText,
    direction: getComputedStyle(document.getElementById('text')).direction,
    model: document.getElementById('model-line').innerText,
  };
})()
"""


@pytest.fixture(scope="module")
def server(
    tiny_model: NarrativeClassifier, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("page")
    folder = save_test_model(tiny_model, root / "model", name="narrative-classifier")
    app = create_app(make_settings(folder, root / "cache"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # Listening before the server thread starts: the browser's first connection waits in the
    # backlog until uvicorn has run the lifespan and accepts, so no readiness polling is needed.
    sock.listen(64)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        instance.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    assert CHROMIUM is not None
    browser = Chromium(CHROMIUM, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        yield Page(browser)
    finally:
        browser.close()


def _classify_through_the_page(page: Page, text: str) -> dict[str, Any]:
    page.evaluate("document.getElementById('text').value = ''")
    page.type_into("#text", text)
    page.click("#classify")
    page.evaluate(WAIT_FOR_ANSWER, timeout=40)
    seen: dict[str, Any] = page.evaluate(READ_RESULTS)
    return seen


def test_an_analyst_classifies_a_passage_and_a_long_article(
    server: str, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{server}/")
    page.evaluate(WAIT_FOR_READY)

    seen = _classify_through_the_page(page, SANCTIONS_TEXT)
    page.screenshot(tmp_path / "passage.png")
    assert seen["error"] is None
    assert seen["results"]
    assert seen["direction"] == "rtl"
    assert "narrative-classifier" in seen["model"]
    rows = {row["label"]: row for row in seen["rows"]}
    assert set(rows) == {"election_interference", "diplomacy", "sanctions"}
    sanctions = rows[SAN]
    assert sanctions["assigned"]
    assert "sanctions" in sanctions["text"] and "assigned" in sanctions["text"]
    # The bar is as long as the score says.
    score = int(sanctions["score"].rstrip("%")) / 100
    assert score > 0.5
    assert sanctions["fill"] == pytest.approx(score, abs=0.02)
    assert not any(row["assigned"] for label, row in rows.items() if label != SAN)
    # Evidence words are highlighted in the text itself, in colour.
    marked = {mark["text"] for mark in seen["marks"]}
    assert "عقوبات" in marked
    assert all(mark["label"] == SAN for mark in seen["marks"])
    assert all(mark["background"] not in ("rgba(0, 0, 0, 0)", "") for mark in seen["marks"])
    assert seen["highlighted"].strip() == SANCTIONS_TEXT
    # The legend lists the evidence as written in the text (الخزانة, not the normalised الخزانه).
    assert "عقوبات" in seen["legend"] and "الخزانة" in seen["legend"]
    assert seen["passages"] == []  # one passage: no list

    article = SEED_ARTICLE.read_text(encoding="utf-8")
    seen = _classify_through_the_page(page, article)
    page.screenshot(tmp_path / "article.png")
    assert seen["error"] is None
    assert len(seen["passages"]) == 18
    assert seen["passagesTitle"] == "Passages (18)"
    assert any("election interference" in passage for passage in seen["passages"])
    assert {row["label"] for row in seen["rows"] if row["assigned"]} >= {"election_interference"}

    # Nothing was requested from anywhere but the service itself.
    urls = [u for u in page.requested_urls() if not u.startswith(("data:", "about:"))]
    assert urls, "no request was recorded"
    assert all(url.startswith(server) for url in urls), urls


def test_the_page_explains_instead_of_sending_nothing(server: str, page: Page) -> None:
    page.goto(f"{server}/")
    page.evaluate(WAIT_FOR_READY)
    page.type_into("#text", "   ")
    page.click("#classify")
    seen = page.evaluate(READ_RESULTS)
    assert seen["error"] == "Paste some Arabic text first."
    assert not seen["results"]
