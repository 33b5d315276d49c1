"""A small Chrome DevTools Protocol driver for headless Chromium (stdlib + ws_client.py).

    with Browser() as b:
        page = b.new_page("http://127.0.0.1:PORT/page.html")
        page.evaluate("1 + 1")                 # -> 2 (promises awaited, values returned by value)
        page.wait_for("window.ready === true")  # polls a page-side condition, timeout -> AssertionError

Chromium runs with fake media devices (a test pattern and a beep) and auto-granted permissions,
its own temporary profile, and --remote-debugging-port=0: the DevTools port is read from its
stderr ("DevTools listening on ws://..."). Pages are CDP targets opened with Target.createTarget
on the browser socket and driven over their own socket. Exceptions thrown in the page come back
as AssertionError with the page's message; console output is kept (page.console) for failures.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

from ws_client import WsClient

CHROMIUM = os.environ.get("JN_CHROMIUM", shutil.which("chromium") or "chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--use-fake-ui-for-media-stream",
         "--use-fake-device-for-media-stream", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-dev-shm-usage", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
         "--allow-loopback-in-peer-connection"]  # ICE on 127.0.0.1: the only address tests may use


def have_chromium():
    return shutil.which(CHROMIUM) is not None


class CdpError(AssertionError):
    pass


class Session:
    """One CDP socket (the browser's or a page's): commands by id, events kept in order."""

    def __init__(self, ws_url, timeout=30):
        u = urllib.parse.urlparse(ws_url)
        self.ws = WsClient(u.hostname, u.port, u.path, timeout=timeout)
        self.ws.sock.settimeout(None)  # the reader blocks until Chromium says something, however long
        self.next_id = 0
        self.cond = threading.Condition()
        self.replies = {}
        self.events = []
        self.closed = False
        self.timeout = timeout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                op, payload = self.ws.recv()
                if op == 8:
                    break
                if op != 1:
                    continue
                m = json.loads(payload.decode())
                with self.cond:
                    if "id" in m:
                        self.replies[m["id"]] = m
                    else:
                        self.events.append(m)
                    self.cond.notify_all()
        except (ConnectionError, OSError, ValueError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def send(self, method, params=None, timeout=None):
        self.next_id += 1
        i = self.next_id
        self.ws.send(json.dumps({"id": i, "method": method, "params": params or {}}))
        with self.cond:
            if not self.cond.wait_for(lambda: i in self.replies or self.closed, timeout or self.timeout) or i not in self.replies:
                raise CdpError(f"no CDP reply to {method} (closed={self.closed})")
            r = self.replies.pop(i)
        if "error" in r:
            raise CdpError(f"{method}: {r['error']}")
        return r.get("result", {})

    def wait_event(self, method, timeout=None):
        with self.cond:
            found = []

            def look():
                for e in self.events:
                    if e.get("method") == method:
                        found.append(e)
                        return True
                return self.closed

            self.cond.wait_for(look, timeout or self.timeout)
            if not found:
                raise CdpError(f"no CDP event {method}")
            self.events.remove(found[0])
            return found[0].get("params", {})

    def close(self):
        try:
            self.ws.close()
        except OSError:
            pass


class Page:
    def __init__(self, browser, target_id, ws_url):
        self.browser = browser
        self.target_id = target_id
        self.s = Session(ws_url)
        self.console = []
        self.s.send("Runtime.enable")
        self.s.send("Page.enable")

    def _console(self):
        with self.s.cond:
            for e in self.s.events:
                if e.get("method") == "Runtime.consoleAPICalled":
                    self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"].get("args", [])))
                elif e.get("method") == "Runtime.exceptionThrown":
                    self.console.append("exception: " + e["params"]["exceptionDetails"].get("text", "") + " " +
                                        str(e["params"]["exceptionDetails"].get("exception", {}).get("description", "")))
            self.s.events = [e for e in self.s.events if e.get("method") not in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown")]
        return self.console

    def evaluate(self, expression, timeout=30):
        """The value of a JS expression (a promise is awaited); a thrown error is a CdpError."""
        r = self.s.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True,
                                             "timeout": int(timeout * 1000)}, timeout=timeout + 5)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError(f"page threw: {d.get('exception', {}).get('description') or d.get('text')}\nconsole:\n" +
                           "\n".join(self._console()[-30:]))
        return r.get("result", {}).get("value")

    def wait_for(self, condition, timeout=20, what=None):
        """Waits (in the page, on its own event loop) until a JS condition is truthy; its value."""
        expr = ("new Promise((ok, ko) => { const t0 = Date.now(); const f = () => { let __v; try { __v = (%s); } catch (e) { return ko(e); }"
                " if (__v) return ok(__v); if (Date.now() - t0 > %d) return ko(new Error('timed out: ' + %s)); setTimeout(f, 20); }; f(); })"
                % (condition, int(timeout * 1000), json.dumps(what or condition)))
        return self.evaluate(expr, timeout=timeout + 5)

    def navigate(self, url):
        self.s.send("Page.navigate", {"url": url})
        self.s.wait_event("Page.loadEventFired")

    def reload(self):
        self.s.send("Page.reload", {"ignoreCache": True})
        self.s.wait_event("Page.loadEventFired")

    def close(self):
        try:
            self.browser.root.send("Target.closeTarget", {"targetId": self.target_id})
        except CdpError:
            pass
        self.s.close()


class Browser:
    def __init__(self, extra_flags=None, timeout=60):
        self.profile = tempfile.mkdtemp(prefix="jn-chromium-")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, *(extra_flags or []), "--remote-debugging-port=0",
                                      f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        ws_url = None
        deadline = time.monotonic() + timeout
        for line in self.proc.stderr:  # blocks on Chromium's own output: the DevTools line comes early
            self.log.append(line.rstrip())
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                ws_url = m.group(1)
                break
            if time.monotonic() > deadline:
                break
        if not ws_url:
            self.close()
            raise CdpError("chromium did not report a DevTools port:\n" + "\n".join(self.log[-30:]))
        threading.Thread(target=self._drain, daemon=True).start()
        u = urllib.parse.urlparse(ws_url)
        self.host, self.port = u.hostname, u.port
        self.root = Session(ws_url)
        self.pages = []

    def _drain(self):
        for line in self.proc.stderr:
            if len(self.log) < 5000:
                self.log.append(line.rstrip())

    def new_page(self, url):
        target = self.root.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        page = Page(self, target, f"ws://{self.host}:{self.port}/devtools/page/{target}")
        page.navigate(url)
        self.pages.append(page)
        return page

    def close(self):
        for p in getattr(self, "pages", []):
            p.s.close()
        if getattr(self, "root", None):
            self.root.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class StaticServer:
    """Serves one directory on 127.0.0.1 (the Verto test page and client) from a thread."""

    def __init__(self, root, port=0):
        import functools
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=root))
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
