"""The feedback file: append-only, torn last line dropped, latest score wins, clear refusals."""
import json

import pytest

from recipe_engine.errors import UserError
from recipe_engine.feedback.files import load_prefilled, no_human
from recipe_engine.feedback.store import FeedbackStore


def test_scores_append_and_a_new_store_continues_where_scoring_stopped(tmp_path, explanations):
    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path, explanations)
    assert store.pending() == [("dev-1", "tr-4"), ("dev-1", "tr-9"), ("dev-2", "tr-1")] and not store.complete()
    store.record("dev-1", "tr-4", 3)
    store.record("dev-1", "tr-4", "4")  # scored again: the latest wins
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(r["anchor"], r["candidate"], r["score"]) for r in lines] == [("dev-1", "tr-4", 3), ("dev-1", "tr-4", 4)]
    assert all(r["time"].endswith("+00:00") for r in lines)
    again = FeedbackStore(path, explanations)
    assert again.scores() == {("dev-1", "tr-4"): 4} and again.pending() == [("dev-1", "tr-9"), ("dev-2", "tr-1")]
    again.record("dev-1", "tr-9", 1)
    again.record("dev-2", "tr-1", 5)
    assert again.complete() and len(path.read_text().splitlines()) == 4


def test_a_torn_last_line_is_dropped(tmp_path, explanations):
    path = tmp_path / "feedback.jsonl"
    FeedbackStore(path, explanations).record("dev-1", "tr-4", 2)
    with open(path, "a") as f:
        f.write('{"anchor": "dev-1", "candidate": "tr-9", "sco')
    store = FeedbackStore(path, explanations)
    assert store.scores() == {("dev-1", "tr-4"): 2}
    store.record("dev-1", "tr-9", 5)
    assert [json.loads(x)["score"] for x in path.read_text().splitlines()] == [2, 5]


@pytest.mark.parametrize("anchor,candidate,score,message", [
    ("dev-9", "tr-4", 3, "unknown anchor id 'dev-9' in this round"),
    ("dev-1", "tr-1", 3, "candidate 'tr-1' is not an influential example of anchor 'dev-1'"),
    ("dev-1", "tr-4", 6, "score 6 is out of range: give a whole number from 1 (very different) to 5 (very similar)"),
    ("dev-1", "tr-4", 0, "score 0 is out of range"),
    ("dev-1", "tr-4", 2.5, "score 2.5 is out of range"),
    ("dev-1", "tr-4", True, "score True is out of range"),
])
def test_bad_scores_are_refused_and_not_written(tmp_path, explanations, anchor, candidate, score, message):
    store = FeedbackStore(tmp_path / "feedback.jsonl", explanations)
    with pytest.raises(UserError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        store.record(anchor, candidate, score)
    assert not (tmp_path / "feedback.jsonl").exists()


def test_no_human_scores_every_example_5(explanations):
    assert no_human(explanations) == {("dev-1", "tr-4"): 5, ("dev-1", "tr-9"): 5, ("dev-2", "tr-1"): 5}


def test_prefilled_jsonl_and_csv(tmp_path, explanations):
    jsonl = tmp_path / "scores.jsonl"
    jsonl.write_text('{"anchor": "dev-1", "candidate": "tr-4", "score": 2}\n\n'
                     '{"anchor": "other-round", "candidate": "x", "score": 1}\n')
    assert load_prefilled(jsonl, explanations) == {("dev-1", "tr-4"): 2}
    csv = tmp_path / "scores.csv"
    csv.write_text("anchor,candidate,score\ndev-2,tr-1,4\n")
    assert load_prefilled(csv, explanations) == {("dev-2", "tr-1"): 4}


@pytest.mark.parametrize("name,text,message", [
    ("s.jsonl", '{"anchor": "dev-1", "candidate": "tr-4", "score": 2}\nnot json\n', r"s.jsonl:2: not JSON"),
    ("s.jsonl", '{"anchor": "dev-1", "candidate": "tr-4", "score": 9}\n', r"s.jsonl:1: score 9 is out of range"),
    ("s.jsonl", '{"anchor": "dev-1", "score": 3}\n', r"s.jsonl:1: a line needs anchor, candidate and score"),
    ("s.csv", "anchor,score\ndev-1,3\n", r"s.csv:1: the CSV header must name anchor, candidate and score"),
    ("s.csv", "anchor,candidate,score\ndev-1,tr-4,x\n", r"s.csv:2: score 'x' is out of range"),
])
def test_prefilled_errors_name_file_and_line(tmp_path, explanations, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=message):
        load_prefilled(tmp_path / name, explanations)
    with pytest.raises(UserError, match="no such feedback file"):
        load_prefilled(tmp_path / "missing.jsonl", explanations)


def test_scores_from_another_session_are_seen_and_each_line_is_fsynced(tmp_path, explanations, monkeypatch):
    path = tmp_path / "feedback.jsonl"
    synced = []
    real_fsync = __import__("os").fsync
    monkeypatch.setattr("os.fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    page, prompt = FeedbackStore(path, explanations), FeedbackStore(path, explanations)
    page.record("dev-1", "tr-4", 1)
    prompt.record("dev-1", "tr-4", 3)  # scored again elsewhere: the latest line wins in both
    prompt.record("dev-1", "tr-9", 2)
    assert page.scores() == prompt.scores() == {("dev-1", "tr-4"): 3, ("dev-1", "tr-9"): 2}
    assert page.pending() == [("dev-2", "tr-1")] and len(synced) == 3
    prompt.record("dev-2", "tr-1", 4)
    assert page.complete()


def test_a_line_torn_after_opening_is_cut_before_the_next_score(tmp_path, explanations):
    path = tmp_path / "feedback.jsonl"
    store = FeedbackStore(path, explanations)
    store.record("dev-1", "tr-4", 2)
    with open(path, "a") as f:  # another writer killed mid-line while this store is open
        f.write('{"anchor": "dev-1", "candidate": "tr-9", "sc')
    assert store.scores() == {("dev-1", "tr-4"): 2}  # the partial line is not read
    store.record("dev-1", "tr-9", 5)
    assert [json.loads(x)["score"] for x in path.read_text().splitlines()] == [2, 5]
    assert FeedbackStore(path, explanations).complete() is False


def test_a_broken_line_in_the_middle_names_file_and_line_and_foreign_lines_are_skipped(tmp_path, explanations):
    path = tmp_path / "feedback.jsonl"
    path.write_text('{"anchor": "dev-1", "candidate": "tr-4", "score": 2}\n'
                    '{"anchor": "dev-1", "candidate": "tr-9", "score": "4"}\n'  # hand-edited as text: a score
                    '{"anchor": "dev-7", "candidate": "tr-9", "score": 3}\n')   # not this round: skipped
    assert FeedbackStore(path, explanations).scores() == {("dev-1", "tr-4"): 2, ("dev-1", "tr-9"): 4}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(path.read_text() + '{"anchor": "dev-2", "candidate": "tr-1", "score": 2.5}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:4: score 2.5 is out of range.*fix or delete the line"):
        FeedbackStore(bad, explanations)  # this round's pair with no 1-5 score: said, not skipped
    with open(path, "a") as f:
        f.write("garbage\n")
    with pytest.raises(UserError, match=r"feedback.jsonl:4: not a feedback line .*fix or delete the line"):
        FeedbackStore(path, explanations)
