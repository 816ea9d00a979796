"""A small headless Chromium driver for the site tests: open a page, run JavaScript in it, take a
screenshot. It speaks the DevTools protocol over a pipe (Chromium's --remote-debugging-pipe:
JSON messages ending in a NUL byte on file descriptors 3 and 4), so it needs no Python package
and no port; only a `chromium` (Debian: `apt-get install chromium`) or Chrome binary.

    with Chromium() as browser:
        browser.open("file:///.../site/chapters/03/index.html")
        browser.js("document.title")                  # -> the value, as JSON allows
        browser.screenshot("/tmp/ch03.png", "#visual-ch03")
"""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, BINARIES) if path), None)


class BrowserError(RuntimeError):
    pass


class Chromium:
    def __init__(self, width: int = 1280, height: int = 900, binary: str | None = None, timeout: float = 30):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise FileNotFoundError(f"no Chromium found (looked for {', '.join(BINARIES)}); on Debian: apt-get install chromium")
        self.width, self.height, self.timeout = width, height, timeout
        self.console: list[str] = []  # console messages and uncaught exceptions of the page
        self._next_id = 0
        self._buffer = b""

    def __enter__(self):
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes():  # in the child: the protocol's read end is fd 3, its write end fd 4
            # Move both out of the way first: either may itself be fd 3 or 4.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self._proc = subprocess.Popen(
            [self.binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
             "--allow-file-access-from-files", f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes, pass_fds=(3, 4),  # kept open after wire_pipes
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime"):
            self._call(f"{domain}.enable", session=True)
        self._call("Emulation.setDeviceMetricsOverride", session=True, width=self.width, height=self.height,
                   deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc):
        try:
            self._call("Browser.close")
        except Exception:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    # --- the protocol ------------------------------------------------------------------------

    def _read_message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError(f"Chromium closed the pipe (exit code {self._proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _call(self, method: str, session: bool = False, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._note_event(reply)

    def _note_event(self, event: dict) -> None:
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif event.get("method") == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"console.{params.get('type')}: {text}")

    # --- what a test uses ----------------------------------------------------------------------

    def js(self, expression: str):
        """Evaluate `expression` in the page (promises are awaited) and return its value."""
        result = self._call("Runtime.evaluate", session=True, expression=expression, awaitPromise=True,
                            returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression[:80]!r} threw: {details.get('exception', {}).get('description') or details.get('text')}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Load `url` and wait until the page and its scripts are done."""
        self._call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + self.timeout
        while self.js("document.readyState") != "complete" or self.js("location.href") == "about:blank":
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not finish loading in {self.timeout} s")
            time.sleep(0.05)
        # Diagrams (mermaid, KaTeX) draw after the load event and move what is below them: wait
        # until the page's height has held still for half a second.
        heights = []
        while len(heights) < 5 or len(set(heights[-5:])) > 1:
            if time.monotonic() > deadline:
                break
            heights.append(self.js("document.body.scrollHeight"))
            time.sleep(0.1)

    def screenshot(self, path, selector: str | None = None) -> None:
        """A PNG of the viewport, or of the element `selector` (scrolled into view)."""
        params = {"format": "png"}
        if selector:
            box = self.js(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
                scrollTo(0, el.getBoundingClientRect().top + scrollY - 120); const r = el.getBoundingClientRect();
                return {{x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}}; }})()""")
            params.update(clip={**box, "scale": 1}, captureBeyondViewport=True)
        data = self._call("Page.captureScreenshot", session=True, **params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
