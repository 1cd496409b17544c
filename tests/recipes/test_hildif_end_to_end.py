"""HILDIF end to end on the tiny model and a slice of MNLI: the baseline trains, the round
picks anchors, explains them, stops for feedback, takes a pre-filled file through
`recipe-engine feedback`, resumes, fine-tunes on the augmented copies and reports HANS per
heuristic."""
import json
from pathlib import Path

import pytest

from recipe_engine.cli import main
from recipe_engine.runs import is_complete

ROOT = Path(__file__).resolve().parents[2]
H = "schedule.phases.debug.phases.hildif.objectives.hildif.params"
TINY = ["model.name=tiny_bert", "data.params.train_size=64", "data.params.eval_size=32", "data.params.hans_size=60",
        "schedule.length.epochs=1", "runtime.progress=false", "runtime.log_every=1", f"{H}.anchors.n=2", f"{H}.influential=3",
        f"{H}.explain.knn_k=16", f"{H}.explain.depth=3", f"{H}.augment.params.copies_per_score=[1,1,2,2,3]"]


@pytest.mark.slow
def test_hildif_waits_for_feedback_takes_a_file_and_finishes(tmp_path, capsys, shared_root):
    recipe = str(ROOT / "recipes" / "nli" / "hildif_hs.yaml")
    assert main(["run", recipe, *TINY, "--seeds", "7", "--out", str(tmp_path)]) == 3  # stopped: waits for scores
    err = capsys.readouterr().err
    run = next((tmp_path / "mnli-hildif-hs").iterdir())
    assert f"give them with `recipe-engine feedback {run}`" in err and f"--resume {run}" in err
    folder = run / "seed-7" / "hildif" / "round-0"
    explanations = json.loads((folder / "explanations.json").read_text())
    anchors = explanations["anchors"]
    assert len(anchors) == 2 and all(a["label"] != a["predicted"] for a in anchors)  # misclassified dev examples
    assert all(a["id"].startswith("mnli-dev_subset-") for a in anchors)
    assert all(len(a["candidates"]) == 3 and all(c["id"].startswith("mnli-train_subset-") for c in a["candidates"])
               for a in anchors)
    assert not (folder / "feedback.jsonl").exists()

    scores = {(a["id"], c["id"]): 1 + (i % 5) for a in anchors for i, c in enumerate(a["candidates"])}
    prefilled = tmp_path / "scores.jsonl"
    prefilled.write_text("".join(json.dumps({"anchor": a, "candidate": c, "score": s}) + "\n" for (a, c), s in scores.items()))
    assert main(["feedback", str(run), "--file", str(prefilled)]) == 0
    assert "all scores given; continue the run with" in capsys.readouterr().err

    assert main(["run", recipe, "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert "explained" not in err  # the saved explanations are reused, not computed again
    lines = [json.loads(x) for x in (folder / "feedback.jsonl").read_text().splitlines()]
    assert {(r["anchor"], r["candidate"]): r["score"] for r in lines} == scores
    train = [json.loads(x) for x in (run / "seed-7" / "metrics.jsonl").read_text().splitlines()]
    rounds = [r for r in train if r["event"] == "train" and r["phase"] == "debug[0]/hildif"]
    copies = [1, 1, 2, 2, 3]
    size = sum(1 + copies[s - 1] for s in scores.values())  # each example plus its copies
    assert rounds and all(r["hildif/examples"] == size for r in rounds)
    assert len(rounds) == 2 * -(-size // 16)  # 2 epochs of S at batch 16, S known only after the scores
    assert "fewer than planned; its LR schedule now spans" in err  # the plan counted every score as 5
    assert rounds[-1]["lr"] == pytest.approx(0.0, abs=1e-15) and rounds[0]["lr"] > 0  # linear decay ends with the round
    metrics = json.loads((run / "seed-7" / "eval" / "metrics.json").read_text())["metrics"]
    for h in ("lexical_overlap", "subsequence", "constituent"):
        assert {f"hans/{h}/entailment", f"hans/{h}/non-entailment"} <= set(metrics)
    assert is_complete(run)

    # stopping for scores changes nothing: a run given the same scores up front trains the same
    straight = tmp_path / "straight"
    assert main(["run", recipe, *TINY, f"{H}.feedback=file", f"{H}.feedback_file={prefilled}", "--seeds", "7",
                 "--out", str(straight)]) == 0
    other = next((straight / "mnli-hildif-hs").iterdir())
    assert json.loads((other / "seed-7" / "eval" / "metrics.json").read_text())["metrics"] == metrics
    losses = lambda r: [x["loss"] for x in map(json.loads, (r / "seed-7" / "metrics.jsonl").read_text().splitlines())
                        if x["event"] == "train"]
    assert losses(other) == losses(run)


@pytest.mark.slow
def test_hildif_no_human_and_handpicked_anchors(tmp_path, capsys, shared_root):
    recipe = str(ROOT / "recipes" / "nli" / "hildif_h.yaml")
    args = [*TINY, f"{H}.feedback=no_human", f"{H}.explain.method=cg", f"{H}.explain.cg_iterations=2"]
    assert main(["run", recipe, *args, "--seeds", "3", "--out", str(tmp_path)]) == 0
    run = next((tmp_path / "mnli-hildif-h").iterdir())
    folder = run / "seed-3" / "hildif" / "round-0"
    anchors = json.loads((folder / "explanations.json").read_text())["anchors"]
    assert [a["id"] for a in anchors] == ["mnli-dev_matched-07084", "mnli-dev_matched-04461", "mnli-dev_matched-07956",
                                          "mnli-dev_matched-00863", "mnli-dev_matched-08183"]
    assert anchors[1]["text_pair"] == "From St. Ann's Bay to Cockpit Country."
    assert {json.loads(x)["score"] for x in (folder / "feedback.jsonl").read_text().splitlines()} == {5}
