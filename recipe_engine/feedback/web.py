"""Score in a browser: a page served on 127.0.0.1 only (standard library ``http.server``, no
build step).  It shows the first anchor with unscored examples next to its influential
training examples, their influence and 1-5 buttons; every click is one line in the round's
feedback file, so a reload (or a new session) continues where scoring stopped.

``GET /`` the page; ``GET /state`` the explanations with the scores so far; ``POST /score``
``{"anchor", "candidate", "score"}`` (``Content-Type: application/json``).  Requests from
another host, with a ``Host`` header that is not this server's loopback address (DNS
rebinding), or a score posted by another site's page (its ``Origin``) get 403; unknown ids
and scores outside 1-5 get 400 with the reason, which the page shows.  The last answer is
delivered before ``server_close`` returns, so a session that stops once the round is
complete does not cut off the page's "all scored".
"""
from __future__ import annotations

import ipaddress
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from recipe_engine.errors import UserError
from recipe_engine.feedback.store import MEANING, FeedbackStore

LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def host_allowed(host_header: str | None, port: int) -> bool:
    """The ``Host`` header names this server on a loopback name (``127.0.0.1:PORT``, ``localhost:PORT``)."""
    if not host_header:
        return False
    host, _, p = host_header.rpartition(":") if ":" in host_header else (host_header, "", "")
    return host in LOOPBACK_HOSTS and (p == "" or p == str(port))


def origin_allowed(origin: str | None, port: int) -> bool:
    """A browser's ``Origin`` is this page (``http://127.0.0.1:PORT`` or ``localhost``), or absent
    (a script such as curl); another site's page may not post scores (CSRF)."""
    return origin is None or origin in {f"http://{h}:{port}" for h in LOOPBACK_HOSTS}


class FeedbackServer(ThreadingHTTPServer):
    # non-daemon request threads: server_close() waits for the answers being written
    daemon_threads = False
    block_on_close = True

    def __init__(self, store: FeedbackStore, explanations: dict[str, Any], host: str, port: int) -> None:
        if not is_loopback(host):
            raise UserError(f"the feedback page is served on a loopback address only, not {host!r}")
        super().__init__((host, port), Handler)
        self.store, self.explanations = store, explanations
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: FeedbackServer
    timeout = 15  # seconds a client may take to send its request (server_close waits for it)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the run's terminal is for the run
        pass

    def _send(self, code: int, body: str | bytes, kind: str = "application/json") -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, message: str) -> None:
        self._send(code, json.dumps({"error": message}))

    def _allowed(self) -> bool:
        if not is_loopback(self.client_address[0]):
            self._error(403, f"refused: requests from {self.client_address[0]} are not served; the feedback page "
                             "answers this machine only (127.0.0.1)")
            return False
        if not host_allowed(self.headers.get("Host"), self.server.server_address[1]):
            self._error(403, f"refused: Host {self.headers.get('Host')!r} is not this server; open "
                             f"http://127.0.0.1:{self.server.server_address[1]}/")
            return False
        if not origin_allowed(self.headers.get("Origin"), self.server.server_address[1]):
            self._error(403, f"refused: a page from {self.headers.get('Origin')!r} may not send scores; open "
                             f"http://127.0.0.1:{self.server.server_address[1]}/")
            return False
        return True

    def state(self) -> dict[str, Any]:
        scores = self.server.store.scores()
        return {"anchors": self.server.explanations["anchors"], "meaning": MEANING,
                "scores": [{"anchor": a, "candidate": c, "score": s} for (a, c), s in scores.items()],
                "total": len(self.server.store.order), "done": len(scores), "complete": self.server.store.complete()}

    def do_GET(self) -> None:
        if not self._allowed():
            return
        if self.path == "/":
            self._send(200, PAGE, "text/html")
        elif self.path == "/state":
            with self.server.lock:
                self._send(200, json.dumps(self.state()))
        else:
            self._error(404, f"no page {self.path!r}; open /")

    def do_POST(self) -> None:
        if not self._allowed():
            return
        if self.path != "/score":
            self._error(404, f"no endpoint {self.path!r}; scores go to POST /score")
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
            self._error(415, 'a score is sent as Content-Type: application/json, {"anchor": id, "candidate": id, "score": 1-5}')
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._error(413 if length > MAX_BODY else 400, f"a score is a JSON body of at most {MAX_BODY} bytes with "
                                                          "its Content-Length")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            anchor, candidate, score = body["anchor"], body["candidate"], body["score"]
        except (ValueError, KeyError, TypeError):
            self._error(400, 'a score is JSON {"anchor": id, "candidate": id, "score": 1-5}')
            return
        try:
            with self.server.lock:
                self.server.store.record(str(anchor), str(candidate), score)
                state = self.state()
        except UserError as exc:
            self._error(400, str(exc))
            return
        self._send(200, json.dumps(state))


def serve(store: FeedbackStore, explanations: dict[str, Any], host: str = "127.0.0.1", port: int = 0) -> tuple[FeedbackServer, str]:
    """Start the page in a daemon thread; (server, its URL).  ``port`` 0 picks a free port."""
    server = FeedbackServer(store, explanations, host, port)
    threading.Thread(target=server.serve_forever, name="feedback-page", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}/"


def score_until_complete(store: FeedbackStore, explanations: dict[str, Any], announce: Callable[[str], Any], *,
                         port: int = 0, stopping: Callable[[], bool] = lambda: False) -> None:
    """Serve the page (its URL handed to ``announce``) until every pair is scored or ``stopping()``
    says so; Ctrl-C propagates.  The server is closed either way, after the page's last answer."""
    server, url = serve(store, explanations, port=port)
    announce(url)
    try:
        while not store.complete() and not stopping():
            time.sleep(0.2)
    finally:
        server.shutdown()
        server.server_close()


#: the largest request body read (a score is about 100 bytes)
MAX_BODY = 1 << 16

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HILDIF feedback</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:75em;color:#222}
.cols{display:grid;grid-template-columns:1fr 2fr;gap:1.5em}
.card{border:1px solid #ccc;border-radius:6px;padding:.8em;margin-bottom:.8em}
.anchor{background:#f4f7ff}.meta{color:#666;font-size:.9em}
button{margin:.15em;padding:.3em .7em}button.chosen{background:#2a6;color:#fff}
#error{color:#b00;min-height:1.2em}#progress{font-weight:bold}
</style></head><body>
<h1>Which training examples are like the anchor?</h1>
<p>The anchor and each influential training example are: 1 very different, 2 different, 3 can&rsquo;t decide, 4 similar, 5 very similar. Similar means both share the same type of heuristics or lexical artifacts. Each click is saved; reload at any time.</p>
<p id="progress"></p><p id="error" role="alert"></p>
<div id="round"></div>
<script>
let state = null;
const esc = s => String(s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const pair = e => e.text_pair ? `<b>P:</b> ${esc(e.text)}<br><b>H:</b> ${esc(e.text_pair)}` : esc(e.text);
function scoreOf(a, c) { const s = state.scores.find(x => x.anchor === a && x.candidate === c); return s ? s.score : null; }
function render() {
  document.getElementById("progress").textContent = state.complete
    ? `All ${state.total} examples scored: this round is done and you can close this page.`
    : `${state.done} of ${state.total} scored`;
  const i = state.anchors.findIndex(a => a.candidates.some(c => scoreOf(a.id, c.id) === null));
  const anchor = state.anchors[i < 0 ? state.anchors.length - 1 : i];
  let html = `<div class="cols"><div><div class="card anchor" id="anchor" data-id="${esc(anchor.id)}"><div class="meta">anchor
    ${i < 0 ? state.anchors.length : i + 1} of ${state.anchors.length}: ${esc(anchor.id)} &middot; gold ${esc(anchor.label)}
    &middot; predicted ${esc(anchor.predicted)}</div>${pair(anchor)}</div></div><div>`;
  for (const c of anchor.candidates) {
    const s = scoreOf(anchor.id, c.id);
    html += `<div class="card candidate" data-id="${esc(c.id)}"><div class="meta">training example ${esc(c.id)} &middot; label ${esc(c.label)}
      &middot; influence ${Number(c.influence).toPrecision(3)}${s === null ? "" : ` &middot; your score ${s}`}</div>${pair(c)}<div>`;
    for (const k of [1,2,3,4,5]) html += `<button class="${s === k ? "chosen" : ""}" data-anchor="${esc(anchor.id)}" data-candidate="${esc(c.id)}" data-score="${k}" title="${esc(state.meaning[k])}">${k} ${esc(state.meaning[k])}</button>`;
    html += `</div></div>`;
  }
  document.getElementById("round").innerHTML = html + `</div></div>`;
}
const GONE = "The feedback server is not answering (it stops once every example is scored, or after Ctrl-C). "
           + "Your scores so far are saved; run recipe-engine feedback RUN to continue.";
async function call(path, options) {
  let r;
  try { r = await fetch(path, options); } catch (e) { document.getElementById("error").textContent = GONE; return null; }
  const body = await r.json().catch(() => ({error: `the server answered ${r.status}`}));
  document.getElementById("error").textContent = r.ok ? "" : body.error;
  return r.ok ? body : null;
}
async function load() { const s = await call("/state"); if (s) { state = s; render(); } }
async function send(anchor, candidate, score) {
  const s = await call("/score", {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify({anchor, candidate, score})});
  if (s) { state = s; render(); }
}
document.addEventListener("click", e => {
  const b = e.target.closest("button[data-score]");
  if (b) send(b.dataset.anchor, b.dataset.candidate, Number(b.dataset.score));
});
load();
</script></body></html>
"""
