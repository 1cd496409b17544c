"""report.html: content checks, and a render in headless Chromium (no console errors, every
plot decoded).  Chromium is driven over the DevTools protocol on a pipe (fds 3 and 4), so no
port, no websocket library and no network are involved."""
import base64
import io
import json
import re

import pytest
import torch
import yaml

from tests.chromium import DevTools, chromium_binary
from recipe_engine.report import run_report_html, write_report, write_run_report

SEEDS = (2021, 2022)
PLOT_IDS = ("plot-train-loss", "plot-cid", "plot-group-accuracy", "plot-reliability")


def make_run(root, *, with_logits=True, with_attributions=True, with_cid=True):
    """A finished run folder written by hand: what runner/train write, without training."""
    run = root / "textlen-influence" / "20240101-000000-abcdef12"
    run.mkdir(parents=True)
    (run / "resolved.yaml").write_text(yaml.safe_dump({"name": "textlen-influence", "description": "a <b>test</b> run"}))
    (run / "run.json").write_text(json.dumps({
        "command": "recipe-engine run x.yaml", "fingerprint": "abcdef12" * 8, "seeds": list(SEEDS),
        "environment": {"git_sha": "0123456789abcdef", "git_dirty": True, "device": "cpu", "world_size": 1},
    }))
    per_seed = {}
    g = torch.Generator().manual_seed(0)
    for k, seed in enumerate(SEEDS):
        sd = run / f"seed-{seed}"
        (sd / "eval").mkdir(parents=True)
        lines = []
        for step in range(10, 110, 10):
            rec = {"event": "train", "step": step, "segment": 0, "phase": "alternate[0]/label", "loss": 1.0 / step,
                   "lr": 2e-5, "loss/cross_entropy": 1.0 / step}
            if step % 50 == 0:
                rec["loss/influence_tuning"] = 0.5 / step
            lines.append(json.dumps(rec))
            if with_cid and step % 20 == 0:
                lines.append(json.dumps({"event": "eval", "step": step, "dev/accuracy": 70.0 + step / 10,
                                         "train/cid": 0.1 / (1 + step / 20) + 0.01 * k}))
        lines.append('{"event": "train", "step": 1')  # cut short by a crash: skipped
        (sd / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        metrics = {"test/accuracy": 80.0 + k, "test/worst_group": 60.0 + k, "dev/accuracy": 81.0 + k,
                   "test/group/short/0": 90.0 - k, "test/group/short/1": 60.0 + k,
                   "test/group/long/0": 65.0, "test/group/long/1": 92.0, "train/cid": 0.03}
        per_seed[str(seed)] = metrics
        (sd / "eval" / "metrics.json").write_text(json.dumps({"seed": seed, "metrics": metrics}))
        if with_logits:
            torch.save({"logits": torch.randn(64, 2, generator=g) * 3, "labels": torch.randint(0, 2, (64,), generator=g)},
                       sd / "eval" / "test_logits.pt")
        if with_attributions:
            (sd / "eval" / "attributions.json").write_text(json.dumps([
                {"tokens": ["[CLS]", "Positive", ".", "EU", "rejects", "<script>", "[SEP]"],
                 "scores": [0.0, 0.9, 0.1, -0.3, 0.2, -0.05, 0.0], "label": 1, "pred": 1},
                {"tokens": ["[CLS]", "Negative", ".", "Peter", "[SEP]"], "scores": [0, 0.7, 0.05, -0.2, 0], "label": 0, "pred": 0},
            ]))
    (run / "summary.json").write_text(json.dumps({"meta": {"recipe": "textlen-influence"}, "seeds": list(SEEDS),
                                                  "per_seed": per_seed}))
    return run


def data_uris(html: str) -> dict[str, bytes]:
    return {m.group(1): base64.b64decode(m.group(2))
            for m in re.finditer(r'<img id="([^"]+)"[^>]*src="data:image/png;base64,([^"]+)"', html)}


def test_report_has_every_plot_and_is_self_contained(tmp_path):
    run = make_run(tmp_path)
    path = write_run_report(run)
    assert path == run / "report.html"
    html = path.read_text()
    images = data_uris(html)
    assert set(images) == set(PLOT_IDS)
    import matplotlib.image

    for png in images.values():
        assert png.startswith(b"\x89PNG") and matplotlib.image.imread(io.BytesIO(png), format="png").shape[0] > 100
    for pid in PLOT_IDS:
        assert re.search(rf'<img id="{pid}" class="plot" alt="[^"]+"', html)
    assert 'id="attr-2021-0"' in html and 'id="attr-2021-1"' in html
    assert "&lt;script&gt;" in html and "<script" not in html  # tokens and text are escaped
    assert "a &lt;b&gt;test&lt;/b&gt; run" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched
    assert "loss/influence_tuning" not in html and "influence_tuning" in html  # a panel per term id
    assert "80.50 ± 0.71" in html  # test/accuracy mean ± sd over the two seeds


def test_missing_inputs_are_explained_not_fatal(tmp_path):
    run = make_run(tmp_path, with_logits=False, with_attributions=False, with_cid=False)
    (run / "seed-2021" / "metrics.jsonl").write_text("not json\n")
    html = run_report_html(run)
    assert "no test logits saved (seed-*/eval/test_logits.pt), so no reliability diagram" in html
    assert "no token attributions saved (seed-*/eval/attributions.json)" in html
    assert "no CID evaluations during training" in html
    assert set(data_uris(html)) == {"plot-train-loss", "plot-group-accuracy"}


def test_damaged_file_does_not_fail_the_report(tmp_path):
    run = make_run(tmp_path)
    (run / "seed-2021" / "eval" / "test_logits.pt").write_bytes(b"garbage")
    html = run_report_html(run)
    assert "could not draw this section" in html
    assert "plot-reliability" not in data_uris(html) and "plot-train-loss" in data_uris(html)


def test_study_report(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    children = []
    for i, lr in enumerate(("1e-5", "3e-5")):
        run = make_run(study / f"c{i}")
        write_run_report(run)
        children.append({"combo": {"optimizer.params.lr": lr}, "run_dir": str(run.relative_to(study)), "status": "complete"})
    (study / "study.json").write_text(json.dumps({"name": "textlen-influence", "grid": {"optimizer.params.lr": ["1e-5", "3e-5"]},
                                                  "select": "dev/accuracy", "children": children}))
    html = write_report(study).read_text()
    assert set(data_uris(html)) == {"plot-selection", "plot-cid"}
    assert "lr=1e-5 (selected)" in html  # equal scores: the first child wins
    links = re.findall(r'href="([^"]+)"', html)
    assert links == [children[0]["run_dir"] + "/report.html", children[1]["run_dir"] + "/report.html"]
    assert all((study / link).is_file() for link in links)


# ---------------------------------------------------------------- headless Chromium
CHECK_JS = """JSON.stringify({
  images: Array.from(document.images).map(i => ({id: i.id, alt: i.alt, ok: i.complete && i.naturalWidth > 0,
                                                 w: i.naturalWidth})),
  attributions: document.querySelectorAll('#plot-attributions .example').length,
  scripts: document.scripts.length,
  title: document.title,
})"""


@pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    run = make_run(tmp_path)
    path = write_run_report(run)
    browser = DevTools(chromium_binary(), str(tmp_path / "profile"))
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": path.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        result = browser.send("Runtime.evaluate", {"expression": CHECK_JS, "returnByValue": True}, session=session)
        page = json.loads(result["result"]["value"])
    finally:
        browser.close()
    problems = [ev for ev in browser.events
                if ev.get("method") == "Runtime.exceptionThrown"
                or (ev.get("method") == "Runtime.consoleAPICalled" and ev["params"]["type"] in ("error", "warning", "assert"))
                or (ev.get("method") == "Log.entryAdded" and ev["params"]["entry"]["level"] in ("error", "warning"))]
    assert problems == []
    assert page["title"] == "textlen-influence report"
    assert page["scripts"] == 0
    images = {img["id"]: img for img in page["images"]}
    assert set(images) == set(PLOT_IDS)
    for img in images.values():
        assert img["ok"] and img["w"] > 100 and img["alt"]
    assert page["attributions"] == 2


def test_attribution_heat_maps_per_split(tmp_path):
    run = make_run(tmp_path, with_attributions=False)
    example = {"id": "dev-7", "row": 7, "tokens": ["[CLS]", "a", "grocery", "list", "[SEP]"],
               "special": [True, False, False, False, True], "scores": [5.0, 0.1, 0.8, -0.4, 2.0],
               "counted": [True, True, True, True, True], "label": 1, "prediction": 2, "target": 1}
    (run / "seed-2021" / "eval" / "attributions.json").write_text(json.dumps({
        "seed": 2021, "step": 10, "attribution": {"name": "integrated_gradients", "params": {}},
        "label_names": ["entailment", "neutral", "contradiction"],
        "splits": {"dev": [example], "hans": [dict(example, id="hans-0", prediction=1)]}}))
    html = run_report_html(run)
    assert '<h3>dev</h3>' in html and '<h3>hans</h3>' in html
    assert 'id="attr-2021-dev-0"' in html and 'id="attr-2021-hans-0"' in html
    # the scale is the largest |score| of the ordinary tokens (0.8): [CLS]/[SEP] are greyed, not on the scale
    assert '<span class="tok" style="background:rgba(214,39,40,1.000)" title="0.8">grocery</span>' in html
    assert '<span class="tok" style="background:rgba(31,119,180,0.500)" title="-0.4">list</span>' in html
    assert '<span class="tok" style="background:rgba(214,39,40,0.125)" title="0.1">a</span>' in html
    assert re.search(r'<span class="tok special" style="background:#eee;color:#888" title="5 \(special token\)">\[CLS\]</span>', html)
    assert "gold neutral, predicted contradiction ✗, attributed to neutral" in html
    assert "gold neutral, predicted neutral ✓" in html
    assert "attribution integrated_gradients" in html


def test_a_split_scored_on_its_own_classes_names_them_in_the_heat_map(tmp_path):
    """HANS is scored entailment / non-entailment: gold and prediction use the split's names,
    the attributed class the model's."""
    run = make_run(tmp_path, with_attributions=False)
    example = {"id": "hans-3", "row": 3, "tokens": ["[CLS]", "a", "[SEP]"], "special": [True, False, True],
               "scores": [0.0, 0.5, 0.0], "counted": [True, True, True], "label": 1, "prediction": 0, "target": 2}
    (run / "seed-2021" / "eval" / "attributions.json").write_text(json.dumps({
        "seed": 2021, "step": 10, "attribution": {"name": "integrated_gradients", "params": {}},
        "label_names": ["entailment", "neutral", "contradiction"],
        "split_label_names": {"hans": ["entailment", "non-entailment"]},
        "splits": {"hans": [example]}}))
    assert "gold non-entailment, predicted entailment ✗, attributed to contradiction" in run_report_html(run)
