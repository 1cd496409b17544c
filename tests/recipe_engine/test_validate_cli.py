"""`recipe-engine validate`: every error of a file at once, FILE:LINE:COL: path: message."""
import textwrap

from recipe_engine.cli import main

BAD = textwrap.dedent("""\
    name: bad
    model: {name: tiny_bert}
    data:
      name: textlen
      batch_sise: 8
    optimizer:
      name: adamw
      params: {lr: fast}
    schedule:
      phases:
        - id: train
          for: -5
          objectives:
            - {name: cross_entropi}
    seeds: [1]
    seeds: [2]
""")


def test_five_errors_at_once(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 1
    assert "Traceback" not in err
    expected = [
        f"{path}:5:3: data.batch_sise: unknown key 'batch_sise'; remove it or fix its spelling (did you mean 'batch_size'?)",
        f"{path}:8:12: optimizer.params.lr: input should be a valid number, unable to parse string as a number, got 'fast'",
        f"{path}:12:7: schedule.phases.train.for: input should be greater than 0, got -5; use a positive value",
        f"{path}:14:12: schedule.phases.train.objectives.cross_entropi.name: unknown objective 'cross_entropi'; did you mean 'cross_entropy'?",
        f"{path}:16:1: seeds: duplicate key 'seeds' (first at line 15); remove one",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), f"missing: {want}\n---\n{err}"
    # sorted by line
    line_numbers = [int(line.split(":")[1]) for line in lines]
    assert line_numbers == sorted(line_numbers)


def test_valid_recipe_exits_zero(capsys):
    assert main(["validate", "recipes/quickstart.yaml"]) == 0
    assert "ok" in capsys.readouterr().out


def test_python_tag_refused_and_not_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: evil\nmodel: !!python/object/apply:os.system ['touch {marker}']\n")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "tags are not allowed" in err and "Traceback" not in err
    assert not marker.exists()


def test_dotted_path_component_refused(tmp_path, capsys):
    path = tmp_path / "dotted.yaml"
    path.write_text(textwrap.dedent("""\
        name: dotted
        model: {name: os.system}
        data: {name: textlen}
        optimizer: {name: adamw}
        schedule: {phases: [{id: a, for: 1, objectives: [{name: cross_entropy}]}]}
    """))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:9: model.name: unknown model 'os.system'" in err
    assert "registered: hf_classifier, offline_minilm, tiny_bert" in err


def test_glob_and_several_files(capsys):
    assert main(["validate", "recipes/**/*.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok") >= 6


def test_non_finite_numbers_booleans_as_counts_and_huge_seeds(tmp_path, capsys):
    path = tmp_path / "odd.yaml"
    path.write_text(textwrap.dedent("""\
        name: odd
        seeds: [4294967296]
        model: {name: tiny_bert}
        data: {name: textlen}
        optimizer: {name: adamw, params: {lr: .inf}}
        schedule: {phases: [{id: a, for: true, objectives: [{name: cross_entropy}]}]}
    """))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{path}:2:" in err and "seeds" in err and "less than 4294967296" in err
    assert f"{path}:5:" in err and "optimizer.params.lr: NaN and infinity are not allowed" in err
    assert f"{path}:6:" in err and "schedule.phases.a.for" in err


RAMP = textwrap.dedent("""\
    name: ramp
    model: {name: tiny_bert}
    data: {name: textlen}
    optimizer: {name: adamw}
    schedule:
      unit: UNIT
      phases:
        - id: train
          for: 2
          objectives:
            - {name: cross_entropy, weight: {from: 0, to: 1, over: OVER}}
""")
RAMP_WHY = "(a ramp counts optimizer steps from the start of its phase, whatever schedule.unit is)"


def test_ramp_length_with_a_unit_is_one_error_naming_steps(tmp_path, capsys):
    """`over` counts optimizer steps whatever schedule.unit is, so a `for`-style length there
    gets one message that says so (not also the weight's 'should be a number')."""
    where = "schedule.phases.train.objectives.cross_entropy.weight.over"
    cases = [
        ("step", "{steps: 10}", "write over: 10"),
        ("epoch", "{epochs: 2}", "write over: 2 x the steps per epoch that `recipe-engine show --schedule` prints"),
    ]
    for unit, over, fix in cases:
        path = tmp_path / f"ramp-{unit}.yaml"
        path.write_text(RAMP.replace("UNIT", unit).replace("OVER", over))
        assert main(["validate", str(path)]) == 1
        err = capsys.readouterr().err
        assert err == f"{path}:11:58: {where}: a number of steps, not a mapping; {fix} {RAMP_WHY}\n"


def test_error_report_ends_in_one_newline_without_blank_lines(tmp_path, capsys, monkeypatch):
    """One line per error and exactly one final newline, from `validate` of several files and
    from a command that stops at the first bad recipe; also when a report's text already ends
    in a newline."""
    from recipe_engine.errors import RecipeErrors

    bad, worse = tmp_path / "bad.yaml", tmp_path / "worse.yaml"
    bad.write_text(BAD)
    worse.write_text(BAD.replace("lr: fast", "lr: slow"))
    render = RecipeErrors.render
    for trailing in ("", "\n"):
        monkeypatch.setattr(RecipeErrors, "render", lambda self: render(self) + trailing)
        assert main(["validate", str(bad), str(worse)]) == 1
        err = capsys.readouterr().err
        assert err.endswith("\n") and "\n\n" not in err and len(err.splitlines()) == 10  # five errors per file
        assert main(["show", str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.endswith("\n") and "\n\n" not in err and len(err.splitlines()) == 5
