"""``recipe-engine feedback RUN``: which rounds wait, the file and terminal front ends, the
messages, and the command itself serving the page until the round is complete."""
import copy
import io
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from recipe_engine.errors import UserError
from recipe_engine.feedback.session import EXIT_PENDING, give_feedback, waiting_rounds
from recipe_engine.feedback.store import FeedbackStore

ROOT = Path(__file__).resolve().parents[3]


def make_run(tmp_path, explanations, rounds=((1, 0), (1, 1), (2, 0))):
    """A run folder with explanations for (seed, round); every round but the last of a seed scored."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"recipe": "recipes/nli/hildif_hs.yaml"}))
    for seed, r in rounds:
        folder = run / f"seed-{seed}" / "hildif" / f"round-{r}"
        folder.mkdir(parents=True)
        (folder / "explanations.json").write_text(json.dumps({**copy.deepcopy(explanations), "round": r, "seed": seed}))
        if (seed, r + 1) in rounds:
            store = FeedbackStore(folder / "feedback.jsonl", explanations)
            for pair in store.pending():
                store.record(*pair, 5)
    return run


def scores_of(run, seed, r):
    return [(x["anchor"], x["candidate"], x["score"])
            for x in map(json.loads, (run / f"seed-{seed}" / "hildif" / f"round-{r}" / "feedback.jsonl").read_text().splitlines())]


def test_each_seeds_latest_waiting_round_is_taken(tmp_path, explanations):
    run = make_run(tmp_path, explanations)
    out = io.StringIO()
    assert waiting_rounds(run, out=out) == [run / "seed-1/hildif/round-1", run / "seed-2/hildif/round-0"]
    assert "seed-1/round-0: complete (3 scores)" in out.getvalue()
    assert waiting_rounds(run, seed=2, out=out) == [run / "seed-2/hildif/round-0"]
    assert waiting_rounds(run, round_index=0, out=out) == [run / "seed-2/hildif/round-0"]


def test_a_file_scores_every_waiting_round(tmp_path, explanations):
    run = make_run(tmp_path, explanations)
    scores = tmp_path / "scores.csv"
    scores.write_text("anchor,candidate,score\ndev-1,tr-4,2\ndev-1,tr-9,3\ndev-2,tr-1,4\n")
    out = io.StringIO()
    assert give_feedback(run, file=scores, out=out) == 0
    assert scores_of(run, 1, 1) == scores_of(run, 2, 0) == [("dev-1", "tr-4", 2), ("dev-1", "tr-9", 3), ("dev-2", "tr-1", 4)]
    text = out.getvalue()
    assert "seed-1/round-1: complete" in text and "seed-2/round-0: complete" in text
    assert f"all scores given; continue the run with: recipe-engine run recipes/nli/hildif_hs.yaml --resume {run}" in text
    out = io.StringIO()
    assert give_feedback(run, out=out) == 0  # nothing waits any more: no page is served
    assert "no round waits for feedback (every round with explanations has all its scores)" in out.getvalue()


def test_a_file_without_every_score_says_what_is_left(tmp_path, explanations):
    run = make_run(tmp_path, explanations)
    scores = tmp_path / "scores.jsonl"
    scores.write_text('{"anchor": "dev-1", "candidate": "tr-4", "score": 1}\n')
    out = io.StringIO()
    assert give_feedback(run, file=scores, out=out) == EXIT_PENDING
    assert ("still to score: seed-1/round-1 (2), seed-2/round-0 (2); continue with "
            f"`recipe-engine feedback {run}` or a file with those scores, then: "
            f"recipe-engine run recipes/nli/hildif_hs.yaml --resume {run}") in out.getvalue()


def test_the_terminal_stops_at_q_and_leaves_the_next_seed(tmp_path, explanations, monkeypatch, capsys):
    run = make_run(tmp_path, explanations)
    monkeypatch.setattr(sys, "stdin", io.StringIO("4\nq\n"))
    assert give_feedback(run, terminal=True) == EXIT_PENDING
    err = capsys.readouterr().err
    assert scores_of(run, 1, 1) == [("dev-1", "tr-4", 4)]
    assert not (run / "seed-2/hildif/round-0/feedback.jsonl").exists()
    assert "seed-1/round-1: 2 example(s) still to score" in err
    assert "still to score: seed-1/round-1 (2), seed-2/round-0 (3); continue with `recipe-engine feedback" in err
    assert "seed-2/round-0: 3 example(s) to score" not in err  # asked nothing after the stop


def test_ctrl_c_at_the_prompt_keeps_the_scores(tmp_path, explanations, monkeypatch, capsys):
    run = make_run(tmp_path, explanations, rounds=((1, 0),))

    class Typed(io.StringIO):
        def readline(self, *args):  # one answer, then Ctrl-C at the prompt
            line = super().readline(*args)
            if not line:
                raise KeyboardInterrupt
            return line

    monkeypatch.setattr(sys, "stdin", Typed("5\n"))
    assert give_feedback(run, terminal=True) == EXIT_PENDING
    assert scores_of(run, 1, 0) == [("dev-1", "tr-4", 5)]
    assert "seed-1/round-0: 2 example(s) still to score" in capsys.readouterr().err


@pytest.mark.parametrize("setup,message", [
    (lambda run: (run / "run.json").unlink(), "not a run folder (no run.json)"),
    (lambda run: None, "no HILDIF round has explanations yet for seed 9; run the recipe until it stops for feedback"),
    (lambda run: (run / "seed-1/hildif/round-1/explanations.json").write_text("{}"),
     "round-1/explanations.json: not a round's explanations"),
])
def test_clear_refusals(tmp_path, explanations, setup, message):
    run = make_run(tmp_path, explanations)
    setup(run)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        give_feedback(run, seed=9 if "seed 9" in message else None, file=tmp_path / "unused.csv")


def test_the_command_serves_the_page_until_the_round_is_complete(tmp_path, explanations):
    """`recipe-engine feedback RUN` prints the URL with a free port, takes the scores, answers
    the last one and exits 0 by itself."""
    run = make_run(tmp_path, explanations, rounds=((1, 0),))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen([sys.executable, "-m", "recipe_engine", "feedback", str(run)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "seed-1/round-0: 3 example(s) to score at http://127.0.0.1:" in line, line
        url = line.split(" at ", 1)[1].split()[0]
        for anchor, candidate, score in [("dev-1", "tr-4", 1), ("dev-1", "tr-9", 2), ("dev-2", "tr-1", 3)]:
            req = urllib.request.Request(url + "score", method="POST", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"anchor": anchor, "candidate": candidate, "score": score}).encode())
            with urllib.request.urlopen(req, timeout=20) as reply:
                state = json.load(reply)
        assert state["complete"] and state["done"] == 3  # the last answer arrives before the server stops
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert "seed-1/round-0: complete" in err and "all scores given; continue the run with: recipe-engine run" in err
    assert scores_of(run, 1, 0) == [("dev-1", "tr-4", 1), ("dev-1", "tr-9", 2), ("dev-2", "tr-1", 3)]
