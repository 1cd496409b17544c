"""The feedback page: HTTP refusals, and a real headless Chromium clicking scores, reloading
mid-way and finishing."""
import http.client
import json
import re
import shutil

import pytest

from recipe_engine.errors import UserError
from recipe_engine.feedback.store import FeedbackStore
from recipe_engine.feedback.web import host_allowed, is_loopback, origin_allowed, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the test extra installs it
    sync_playwright = None


@pytest.fixture
def page(tmp_path, explanations):
    store = FeedbackStore(tmp_path / "feedback.jsonl", explanations)
    server, url = serve(store, explanations)
    yield store, server, url
    server.shutdown()
    server.server_close()


def request(server, method, path, body=None, host=None, **extra):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    headers = {"Content-Type": "application/json", **extra}
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
    status, body = request(server, "POST", "/score", {"anchor": "dev-1", "candidate": "tr-4", "score": 3})
    assert status == 200 and json.loads(body)["done"] == 1 and store.scores() == {("dev-1", "tr-4"): 3}
    cases = [({"anchor": "dev-1", "candidate": "tr-4", "score": 6}, "score 6 is out of range"),
             ({"anchor": "nope", "candidate": "tr-4", "score": 2}, "unknown anchor id 'nope'"),
             ({"anchor": "dev-1", "candidate": "tr-1", "score": 2}, "candidate 'tr-1' is not an influential example"),
             ({"anchor": "dev-1"}, 'a score is JSON {"anchor": id, "candidate": id, "score": 1-5}')]
    for payload, message in cases:
        status, body = request(server, "POST", "/score", payload)
        assert status == 400 and message in json.loads(body)["error"]
    assert store.scores() == {("dev-1", "tr-4"): 3}
    status, body = request(server, "GET", "/state", host="evil.example:80")  # DNS rebinding
    assert status == 403 and "is not this server" in json.loads(body)["error"]
    status, body = request(server, "GET", "/nothing")
    assert status == 404


@pytest.mark.parametrize("length, status", [("-1", 400), ("many", 400), (str(1 << 20), 413)])
def test_a_bad_or_huge_content_length_is_refused_at_once(page, length, status):
    _, server, _ = page
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.putrequest("POST", "/score")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", length)
    conn.endheaders()  # no body: the server must answer without waiting for one
    r = conn.getresponse()
    assert r.status == status and "with its Content-Length" in json.loads(r.read())["error"]
    conn.close()


def test_another_sites_page_cannot_post_scores(page):
    """CSRF: a page elsewhere may post to 127.0.0.1, but its browser says where it comes from."""
    store, server, _ = page
    port = server.server_address[1]
    score = {"anchor": "dev-1", "candidate": "tr-4", "score": 5}
    status, body = request(server, "POST", "/score", score, Origin="http://evil.example")
    assert status == 403 and "a page from 'http://evil.example' may not send scores" in json.loads(body)["error"]
    status, body = request(server, "POST", "/score", score, **{"Content-Type": "text/plain"})
    assert status == 415 and "Content-Type: application/json" in json.loads(body)["error"]
    assert store.scores() == {}
    status, _ = request(server, "POST", "/score", score, Origin=f"http://localhost:{port}")
    assert status == 200 and store.scores() == {("dev-1", "tr-4"): 5}
    assert origin_allowed(None, port) and origin_allowed(f"http://127.0.0.1:{port}", port)
    assert not origin_allowed(f"http://127.0.0.1:{port + 1}", port) and not origin_allowed("null", port)


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


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install -e '.[test]')")
def test_the_page_in_headless_chromium(page, tmp_path):
    """Click scores, reload mid-way (the saved score is shown, the page stays at the anchor),
    see a refusal on the page, finish; then read the feedback file line by line."""
    store, server, url = page
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(20_000)
            progress, error, anchor = tab.locator("#progress"), tab.locator("#error"), tab.locator("#anchor")

            def button(candidate, score):
                return tab.locator(f'button[data-candidate="{candidate}"][data-score="{score}"]')

            tab.goto(url)
            expect(progress).to_have_text("0 of 3 scored")
            expect(anchor).to_have_attribute("data-id", "dev-1")
            expect(anchor).to_contain_text("anchor 1 of 2")
            assert tab.locator(".candidate").evaluate_all("cs => cs.map(c => c.dataset.id)") == ["tr-4", "tr-9"]
            expect(tab.locator('.candidate[data-id="tr-4"]')).to_contain_text("influence -0.500")
            expect(tab.locator('.candidate[data-id="tr-9"]')).to_contain_text("Dogs run <b>fast</b>.")  # shown, not markup
            button("tr-4", 2).click()
            expect(progress).to_have_text("1 of 3 scored")
            assert store.scores() == {("dev-1", "tr-4"): 2}

            tab.reload()  # mid-way: the page comes back where scoring stopped
            expect(progress).to_have_text("1 of 3 scored")
            expect(anchor).to_have_attribute("data-id", "dev-1")
            expect(button("tr-4", 2)).to_have_class("chosen")
            assert tab.locator("button.chosen").count() == 1

            # refusals come back as 400 and their message is shown on the page
            tab.evaluate("send('dev-1', 'tr-9', 9)")
            expect(error).to_contain_text("score 9 is out of range: give a whole number from 1")
            tab.evaluate("send('dev-1', 'no-such', 3)")
            expect(error).to_contain_text("candidate 'no-such' is not an influential example of anchor 'dev-1'")
            button("tr-9", 5).click()
            expect(error).to_have_text("")
            expect(anchor).to_have_attribute("data-id", "dev-2")
            expect(anchor).to_contain_text("anchor 2 of 2")
            button("tr-1", 4).click()
            expect(progress).to_have_text(re.compile("^All 3 examples scored"))
        finally:
            browser.close()
    lines = (tmp_path / "feedback.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    assert [(r["anchor"], r["candidate"], r["score"]) for r in rows] == [("dev-1", "tr-4", 2), ("dev-1", "tr-9", 5), ("dev-2", "tr-1", 4)]
    assert all(set(r) == {"anchor", "candidate", "score", "time"} for r in rows)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", r["time"]) for r in rows)
    assert store.complete()
