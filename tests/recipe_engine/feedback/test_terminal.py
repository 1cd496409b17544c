"""The terminal prompt, driven by scripted answers."""
import io
import os
import signal
import time

from recipe_engine.feedback.store import FeedbackStore
from recipe_engine.feedback.terminal import prompt_scores


def run(store, explanations, answers):
    feed = iter(answers)
    out = io.StringIO()
    prompt_scores(store, explanations, input=lambda prompt: next(feed), output=out)
    return out.getvalue()


def test_scores_skips_retries_and_quits_then_resumes(tmp_path, explanations):
    store = FeedbackStore(tmp_path / "f.jsonl", explanations)
    text = run(store, explanations, ["7", "4", "s", "q"])
    assert "score '7' is out of range" in text and "ANCHOR dev-1" in text
    assert store.scores() == {("dev-1", "tr-4"): 4}
    assert "stopped: 2 example(s) left" in text
    again = FeedbackStore(tmp_path / "f.jsonl", explanations)
    text = run(again, explanations, ["2", "5"])
    assert again.complete() and again.scores() == {("dev-1", "tr-4"): 4, ("dev-1", "tr-9"): 2, ("dev-2", "tr-1"): 5}
    assert "training example tr-4" not in text and "training example tr-9" in text  # scored ones are not asked again
    assert "all examples scored" in text


def test_end_of_input_stops_cleanly(tmp_path, explanations):
    store = FeedbackStore(tmp_path / "f.jsonl", explanations)

    def eof(prompt):
        raise EOFError

    out = io.StringIO()
    prompt_scores(store, explanations, input=eof, output=out)
    assert "stopped: 3 example(s) left" in out.getvalue()


def test_ctrl_c_at_the_prompt_of_a_running_round_stops_the_prompt(tmp_path, explanations, monkeypatch):
    """Inside the training loop a first Ctrl-C only flags a stop; at the round's prompt it must
    stop the prompt at once (the scores given are kept, the run then stops for --resume)."""
    from functools import partial

    from recipe_engine.feedback import rounds
    from recipe_engine.stop_signals import StopRequests

    answers = iter(["4"])

    def typed(prompt):
        for answer in answers:
            return answer
        os.kill(os.getpid(), signal.SIGINT)  # the person presses Ctrl-C while the prompt waits
        time.sleep(5)
        return "5"  # never reached when Ctrl-C interrupts the prompt

    monkeypatch.setattr(rounds, "prompt_scores", partial(prompt_scores, input=typed, output=io.StringIO()))
    store = FeedbackStore(tmp_path / "f.jsonl", explanations)
    with StopRequests() as stop:
        rounds.RoundFeedback(tmp_path, 1).ask(store, explanations, "terminal", None)
        assert stop.requested is None
        assert signal.getsignal(signal.SIGINT) == stop._handle  # the loop's handler is back
    assert store.scores() == {("dev-1", "tr-4"): 4}


def test_a_rounds_note_is_logged_with_its_explanations(tmp_path, explanations):
    """EXPLAIN's remarks (e.g. fewer misclassified examples than anchors asked) reach the log."""
    from recipe_engine.feedback.rounds import RoundFeedback

    said = []
    found = {**explanations, "note": "2 anchors, not 5: split 'dev' has only 2 misclassified examples"}
    RoundFeedback(tmp_path, 1, log=said.append).collect("round-0", lambda: found, "no_human")
    assert len(said) == 1 and said[0].endswith("(2 anchors, not 5: split 'dev' has only 2 misclassified examples)")
