"""The schedule compiles to the timeline the paper's alternation needs."""
import pytest

from recipe_engine.plan import TRAIN, PlanError, compile_timeline
from recipe_engine.resolve import resolve, resolve_text

BASE = """
name: t
model: {name: tiny_bert}
data: {name: textlen}
optimizer: {name: adamw}
schedule:
"""


def timeline(schedule_yaml: str, per_epoch: int = 24, own: int | None = None):
    recipe = resolve_text(BASE + schedule_yaml, "t.yaml").recipe
    return compile_timeline(recipe.schedule, per_epoch, (lambda term: own if term.name != "cross_entropy" else None))


def test_textlen_influence_alternation_matches_reference_rounds():
    # reference code: rounds after CE steps 50, 100, 150, 200 of 240 (no round in the last half interval)
    tl = compile_timeline(resolve("recipes/textlen/influence_tuning.yaml").recipe.schedule, 24)
    rounds = [s for s in tl.segments if not s.draws_train]
    assert [s.train_step_start for s in rounds] == [50, 100, 150, 200]
    assert all(s.steps == 10 and s.epochs == 5 and s.reset_state == "all" for s in rounds)  # 5 epochs x ceil(75/64)
    labels = [s for s in tl.segments if s.draws_train]
    assert [s.steps for s in labels] == [50, 50, 50, 50, 40]
    assert tl.train_steps == 240 and tl.optimizer_steps("main") == 240 and tl.optimizer_steps("influence") == 40


def test_for_in_schedule_unit_and_explicit_lengths():
    tl = timeline("""
      unit: epoch
      phases:
        - {id: a, for: 2, objectives: [{name: cross_entropy}]}
        - {id: b, for: {steps: 7}, objectives: [{name: cross_entropy}]}
    """)
    assert [(s.phase_id, s.steps, s.epochs) for s in tl.segments] == [("a", 48, 2), ("b", 7, None)]
    assert tl.train_steps == 55


def test_until_end_takes_the_rest_and_repeat_n():
    tl = timeline("""
      length: {steps: 100}
      phases:
        - {id: warm, for: 30, objectives: [{name: cross_entropy}]}
        - id: loop
          repeat: 2
          phases:
            - {id: x, for: 5, objectives: [{name: cross_entropy, weight: 0.5}]}
        - {id: rest, until: end, objectives: [{name: cross_entropy}]}
    """)
    assert [(s.path, s.steps) for s in tl.segments] == [("warm", 30), ("loop[0]/x", 5), ("loop[1]/x", 5), ("rest", 60)]
    assert tl.segments[1].terms[0].weight == 0.5


def test_min_remaining_skips_late_rounds_and_truncates_label_steps():
    tl = timeline("""
      length: {steps: 110}
      phases:
        - id: alt
          repeat: until_end
          phases:
            - {id: label, for: 50, objectives: [{name: cross_entropy}]}
            - {id: round, for: {epochs: 2}, min_remaining: 25, objectives: [{name: influence_tuning}]}
    """, own=3)
    assert [(s.path, s.steps, s.source) for s in tl.segments] == [
        ("alt[0]/label", 50, TRAIN), ("alt[0]/round", 6, "influence_tuning"),
        ("alt[1]/label", 50, TRAIN), ("alt[2]/label", 10, TRAIN),  # remaining 10 < 25: no round
    ]


def test_ramp_weight():
    recipe = resolve_text(BASE + """
      phases:
        - id: a
          for: 10
          objectives: [{name: cross_entropy, weight: {from: 0.0, to: 1.0, over: 4}}]
    """, "t.yaml").recipe
    ramp = recipe.schedule.phases[0].objectives[0].weight
    assert [ramp.at(i) for i in (0, 2, 4, 9)] == [0.0, 0.5, 1.0, 1.0]


def test_repeat_without_progress_is_refused():
    with pytest.raises(PlanError):
        timeline("""
          length: {steps: 10}
          phases:
            - id: alt
              repeat: until_end
              phases:
                - {id: label, for: 5, min_remaining: 100, objectives: [{name: cross_entropy}]}
        """)


def test_rounds_that_keep_files_get_one_folder_each():
    """HILDIF keeps each round's explanations and scores in round-<r>/: one round per repeat
    index, never two phases (or a joint phase) writing the same folder."""
    one_per_repeat = timeline("""
      phases:
        - {id: train, for: {epochs: 1}, objectives: [{name: cross_entropy}]}
        - id: debug
          repeat: 2
          phases:
            - {id: hildif, for: {epochs: 1}, objectives: [{name: hildif}]}
    """, own=3)
    assert [(s.path, s.round) for s in one_per_repeat.segments if not s.draws_train] == [
        ("debug[0]/hildif", 0), ("debug[1]/hildif", 1)]
    with pytest.raises(PlanError, match=r"keeps its round's files in round-0/, which 'first' uses too; run its rounds "
                                        r"as one phase under `repeat: T`"):
        timeline("""
          phases:
            - {id: first, for: {epochs: 1}, objectives: [{name: hildif}]}
            - {id: second, for: {epochs: 1}, objectives: [{name: hildif}]}
        """, own=3)
    with pytest.raises(PlanError, match=r"phase 'both': term 'hildif' runs rounds on its own data .* give it a phase of its own"):
        timeline("""
          phases:
            - {id: both, for: {epochs: 1}, objectives: [{name: cross_entropy}, {name: hildif}]}
        """, own=3)
