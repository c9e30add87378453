"""report.html in the browser its readers open it in: headless Chromium (Debian's package).

The page of a real run with FAIL, WARN, WAIVED, SKIP, MANUAL, ERROR (a broken check,
and an unreachable node) and an expired waiver is loaded from a file:// URL at phone
width, driven over the DevTools protocol (a pipe: no port, no network) with real
clicks and typing, asserted on its DOM, and photographed. The screenshots stay with
the test's output (its tmp_path; the path is printed).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "data")) if str(ROOT / "tests" / "data") not in sys.path else None
import report_runs  # noqa: E402  (tests/data: the shared report runs)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian package chromium; `make test` installs it through "
    "scripts/setup-system.sh)",
)

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
DESKTOP = {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}


class Chromium:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (CDP on fds 3 and 4)."""

    def __init__(self, profile: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def plumb() -> None:  # in the child: CDP commands on fd 3, responses on fd 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [
                str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--hide-scrollbars",
                "--disable-extensions", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=plumb,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 20) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        answer = self._until(lambda m: m.get("id") == self._next, timeout)
        assert "error" not in answer, (method, answer["error"])
        return answer.get("result", {})

    def wait_event(self, method: str, timeout: float = 20) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                self.events.remove(event)
                return event
        return self._until(lambda m: m.get("method") == method, timeout)

    def _until(self, wanted: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if wanted(message):
                    return message
                if "method" in message:
                    self.events.append(message)
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                assert chunk, "Chromium closed the DevTools pipe"
                self._buffer += chunk

    def open(self, url: str, metrics: dict[str, Any]) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", metrics)
        self.send("Network.enable")
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
            "return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1}
            )

    def type(self, selector: str, text: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path, width: int) -> Path:
        height = int(self.js("document.documentElement.scrollHeight"))
        data = self.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture(scope="module")
def every_status(tmp_path_factory: pytest.TempPathFactory) -> report_runs.Run:
    return report_runs.every_status(tmp_path_factory.getbasetemp())


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    chromium = Chromium(tmp_path / "chromium-profile")
    yield chromium
    chromium.close()


VISIBLE_GROUPS = "[...document.querySelectorAll('#results .group')].filter(g => !g.hidden)"


def test_the_report_in_chromium_at_phone_width(every_status: Any, browser: Chromium, tmp_path: Path) -> None:
    page = every_status.out / "report.html"
    browser.open(page.as_uri(), PHONE)
    # Loaded from the file alone: the only request is the page itself.
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert requests == [page.as_uri()]
    assert browser.js("document.querySelector('#verdict').textContent") == "NOT compliant (exit code 1)"
    assert "ACP-NET-999" in browser.js("document.querySelector('#expired').textContent")
    assert browser.js("document.querySelector('#incomplete') !== null")
    # Readable on a phone: nothing wider than the screen, the filters are usable.
    assert browser.js("document.documentElement.scrollWidth") <= PHONE["width"]
    assert browser.js("getComputedStyle(document.querySelector('#filters')).display") != "none"
    groups = browser.js(
        "[...document.querySelectorAll('#results .group')].map(g => ({status: g.dataset.status, "
        "check: g.dataset.check, targets: JSON.parse(g.dataset.targets),"
        " title: g.querySelector('.title').textContent, why: (g.querySelector('.why') || {}).textContent || null, "
        "fix: (g.querySelector('.fix') || {}).textContent || null,"
        " text: g.textContent}))"
    )
    by = {(g["status"], g["check"]): g for g in groups}
    # The same FAIL on four nodes: one group, the nodes listed, the message once.
    swap = by[("fail", "ACP-NODE-909")]
    assert (
        swap["targets"] == ["node:cp1", "node:cp2", "node:cp3", "node:w2"]
        and swap["text"].count("swap is on (/swap.img)") == 1
    )
    # One unreachable node: one ERROR group naming its four checks, not four identical ones.
    unreachable = [g for g in groups if g["status"] == "error" and g["targets"] == ["node:w1"]]
    assert len(unreachable) == 1 and unreachable[0]["title"] == "4 checks could not run on node:w1"
    assert all(
        check in unreachable[0]["text"] for check in ("ACP-NODE-908", "ACP-NODE-909", "ACP-NODE-910", "ACP-NODE-911")
    )
    # Every finding says why (the check's rationale) and how to fix it.
    assert by[("fail", "ACP-NET-902")]["why"] == "Why 902 exists: the cluster CIDR must be chosen on purpose."
    assert by[("fail", "ACP-NET-902")]["fix"] == "fix the CIDR"
    for key in (("warn", "ACP-NET-903"), ("warn", "ACP-NET-904"), ("waived", "ACP-NET-913"), ("manual", "ACP-NET-906")):
        assert by[key]["why"] and by[key]["fix"], key
    assert "net-team@example.com" in by[("waived", "ACP-NET-913")]["text"]
    order = [g["status"] for g in groups]
    assert (
        order.index("fail")
        < order.index("error")
        < order.index("warn")
        < order.index("manual")
        < order.index("waived")
        < order.index("pass")
    )
    shot = browser.screenshot(tmp_path / "report-phone.png", PHONE["width"])
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000

    # Filters, as a reader uses them: status boxes clicked, a target chosen, a search typed.
    for status in ("pass", "skip", "warn", "manual", "waived", "error"):
        browser.click(f"#filters input[value={status}]")
    shown = browser.js(f"{VISIBLE_GROUPS}.map(g => g.dataset.status)")
    assert shown and set(shown) == {"fail"}
    assert browser.js("document.querySelector('#shown').textContent").startswith(f"{len(shown)} of ")
    browser.js(
        "(() => { const s = document.querySelector('#filters select[name=target]'); s.value = 'node:w2'; "
        "s.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )
    assert browser.js(f"{VISIBLE_GROUPS}.map(g => g.dataset.check)") == ["ACP-NODE-908", "ACP-NODE-909"]
    assert browser.js(
        "[...document.querySelectorAll('.group[data-check=\"ACP-NODE-909\"] li')]"
        ".filter(li => !li.hidden).map(li => li.dataset.target)"
    ) == ["node:w2"]
    browser.js(
        "(() => { const s = document.querySelector('#filters select[name=target]'); s.value = ''; "
        "s.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )
    browser.type("#filters input[name=q]", "SWAP")
    assert browser.js(f"{VISIBLE_GROUPS}.map(g => g.dataset.check)") == ["ACP-NODE-909"]
    browser.click("#filters input[value=error]")
    browser.js(
        "(() => { const s = document.querySelector('#filters select[name=area]'); s.value = 'NODE'; "
        "s.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )
    assert sorted(browser.js(f"{VISIBLE_GROUPS}.map(g => g.dataset.status)")) == [
        "error",
        "fail",
    ]  # swap on four nodes, and w1's four checks
    browser.type("#filters input[name=q]", " nothing like this")
    assert browser.js(f"{VISIBLE_GROUPS}.length") == 0 and browser.js("document.querySelector('#none').hidden") is False
    assert browser.js("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_report_at_desktop_width(every_status: Any, browser: Chromium, tmp_path: Path) -> None:
    browser.open((every_status.out / "report.html").as_uri(), DESKTOP)
    assert browser.js("document.documentElement.scrollWidth") <= DESKTOP["width"]
    assert (
        browser.js("document.querySelectorAll('#results .group').length") == browser.js(f"{VISIBLE_GROUPS}.length") > 10
    )
    print(f"screenshot: {browser.screenshot(tmp_path / 'report-desktop.png', DESKTOP['width'])}")
