"""The feedback page: HTTP refusals, and a real headless Chromium clicking scores, reloading
mid-way and finishing."""
import http.client
import json
import time

import pytest

from recipe_engine.errors import UserError
from recipe_engine.feedback.store import FeedbackStore
from recipe_engine.feedback.web import host_allowed, is_loopback, serve
from tests.chromium import DevTools, chromium_binary


@pytest.fixture
def page(tmp_path, explanations):
    store = FeedbackStore(tmp_path / "feedback.jsonl", explanations)
    server, url = serve(store, explanations)
    yield store, server, url
    server.shutdown()
    server.server_close()


def request(server, method, path, body=None, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    headers = {"Content-Type": "application/json"}
    if host is not None:
        headers["Host"] = host
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    data = r.read().decode()
    conn.close()
    return r.status, data


def test_serves_loopback_only_and_prints_a_free_port(page):
    store, server, url = page
    assert url.startswith("http://127.0.0.1:") and server.server_address[1] > 0
    status, html = request(server, "GET", "/")
    assert status == 200 and "<title>HILDIF feedback</title>" in html
    with pytest.raises(UserError, match="loopback address only"):
        serve(store, {"anchors": []}, host="0.0.0.0")


def test_scores_and_refusals_over_http(page):
    store, server, _ = page
    status, body = request(server, "POST", "/api/score", {"anchor": "dev-1", "candidate": "tr-4", "score": 3})
    assert status == 200 and json.loads(body)["done"] == 1 and store.scores() == {("dev-1", "tr-4"): 3}
    cases = [({"anchor": "dev-1", "candidate": "tr-4", "score": 6}, "score 6 is out of range"),
             ({"anchor": "nope", "candidate": "tr-4", "score": 2}, "unknown anchor id 'nope'"),
             ({"anchor": "dev-1", "candidate": "tr-1", "score": 2}, "candidate 'tr-1' is not an influential example"),
             ({"anchor": "dev-1"}, 'a score is JSON {"anchor": id, "candidate": id, "score": 1-5}')]
    for payload, message in cases:
        status, body = request(server, "POST", "/api/score", payload)
        assert status == 400 and message in json.loads(body)["error"]
    assert store.scores() == {("dev-1", "tr-4"): 3}
    status, body = request(server, "GET", "/api/state", host="evil.example:80")  # DNS rebinding
    assert status == 403 and "is not this server" in json.loads(body)["error"]
    status, body = request(server, "GET", "/nothing")
    assert status == 404


def test_other_hosts_are_refused():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("192.168.1.7")
    assert not is_loopback("not-an-ip")
    assert host_allowed("127.0.0.1:8000", 8000) and host_allowed("localhost:8000", 8000)
    assert not host_allowed("127.0.0.1:9000", 8000) and not host_allowed("example.com:8000", 8000)
    assert not host_allowed(None, 8000)


def test_a_request_from_another_host_gets_403(page):
    """The handler's own check, with a non-loopback client address."""
    store, server, _ = page
    from recipe_engine.feedback.web import Handler

    class Fake(Handler):
        def __init__(self):  # no socket: only what _allowed reads and _send writes
            import io
            self.server, self.client_address, self.headers = server, ("10.0.0.5", 5555), {"Host": "127.0.0.1"}
            self.wfile, self.request_version, self.requestline, self.command = io.BytesIO(), "HTTP/1.1", "GET / HTTP/1.1", "GET"

    fake = Fake()
    assert fake._allowed() is False
    reply = fake.wfile.getvalue().decode()
    assert "403" in reply.splitlines()[0] and "requests from 10.0.0.5 are not served" in reply


STATE_JS = """JSON.stringify({
  progress: document.getElementById('progress').textContent,
  error: document.getElementById('error').textContent,
  anchor: (document.getElementById('anchor') || {dataset: {}}).dataset.id,
  candidates: Array.from(document.querySelectorAll('.candidate')).map(c => c.dataset.id),
  chosen: Array.from(document.querySelectorAll('button.chosen')).map(b => b.dataset.candidate + '=' + b.dataset.score),
})"""


@pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_the_page_in_headless_chromium(page, tmp_path):
    store, server, url = page
    browser = DevTools(chromium_binary(), str(tmp_path / "profile"))
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime"):
            browser.send(f"{domain}.enable", session=session)

        def state():
            out = browser.send("Runtime.evaluate", {"expression": STATE_JS, "returnByValue": True}, session=session)
            value = out["result"].get("value")  # none while the page is still loading
            return json.loads(value) if value else {"progress": "", "error": "", "anchor": None, "candidates": [], "chosen": []}

        def until(check, what):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                s = state()
                if check(s):
                    return s
                time.sleep(0.1)
            raise AssertionError(f"the page never showed {what}: {state()}")

        def click(candidate, score):
            """A real mouse click in the middle of the button."""
            js = (f"(() => {{ const r = document.querySelector('button[data-candidate=\"{candidate}\"][data-score=\"{score}\"]')"
                  ".getBoundingClientRect(); return JSON.stringify([r.x + r.width / 2, r.y + r.height / 2]); })()")
            x, y = json.loads(browser.send("Runtime.evaluate", {"expression": js, "returnByValue": True}, session=session)["result"]["value"])
            for kind in ("mousePressed", "mouseReleased"):
                browser.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}, session=session)

        browser.send("Page.navigate", {"url": url}, session=session)
        s = until(lambda s: s.get("anchor") == "dev-1", "the first anchor")
        assert s["candidates"] == ["tr-4", "tr-9"] and s.get("progress", "") == "0 of 3 scored"
        click("tr-4", 2)
        until(lambda s: s.get("progress", "") == "1 of 3 scored", "the first score")
        assert store.scores() == {("dev-1", "tr-4"): 2}
        browser.send("Page.reload", {}, session=session)  # mid-way: the page comes back where scoring stopped
        s = until(lambda s: s.get("progress", "") == "1 of 3 scored" and s.get("anchor") == "dev-1", "the saved score after a reload")
        assert s["chosen"] == ["tr-4=2"]
        click("tr-9", 5)
        s = until(lambda s: s.get("anchor") == "dev-2", "the second anchor")
        assert s["candidates"] == ["tr-1"]
        # a score the server refuses shows its message on the page
        browser.send("Runtime.evaluate", {"expression": "send('dev-2', 'tr-1', 9)", "awaitPromise": True}, session=session)
        until(lambda s: "out of range" in s.get("error", ""), "the refusal")
        click("tr-1", 4)
        s = until(lambda s: s.get("progress", "").startswith("All 3 examples scored"), "completion")
        assert s["error"] == ""
    finally:
        browser.close()
    lines = [json.loads(x) for x in (tmp_path / "feedback.jsonl").read_text().splitlines()]
    assert [(r["anchor"], r["candidate"], r["score"]) for r in lines] == [("dev-1", "tr-4", 2), ("dev-1", "tr-9", 5), ("dev-2", "tr-1", 4)]
    assert store.complete()
