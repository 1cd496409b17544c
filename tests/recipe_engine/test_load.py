"""Recipe loading: safe YAML with positions, extends chains, provenance, robustness."""
from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recipe_engine.errors import Origin
from recipe_engine.load import LoadedRecipe, dotted, load_recipe, load_text, origin_of


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def rendered(loaded: LoadedRecipe) -> list[str]:
    return [e.render() for e in loaded.errors]


# --- YAML safety and positions ---------------------------------------------------------

def test_duplicate_key_names_both_lines_and_keeps_last():
    loaded = load_text("name: x\noptimizer:\n  params:\n    lr: 1.0\n    wd: 0\n    lr: 2.0\n", "r.yaml")
    assert rendered(loaded) == ["r.yaml:6:5: optimizer.params.lr: duplicate key 'lr' (first at line 4); remove one"]
    assert loaded.data["optimizer"]["params"] == {"wd": 0, "lr": 2.0}


def test_all_duplicate_keys_reported_at_once():
    loaded = load_text("a: 1\nb: 2\na: 3\nb: 4\n", "r.yaml")
    assert rendered(loaded) == ["r.yaml:3:1: a: duplicate key 'a' (first at line 1); remove one",
                                "r.yaml:4:1: b: duplicate key 'b' (first at line 2); remove one"]


def test_python_tags_are_refused_and_nothing_runs(tmp_path):
    made_by_shell = tmp_path / "by_shell"
    made_by_open = tmp_path / "by_open"
    payload = (f'a: !!python/object/apply:os.system ["touch {made_by_shell}"]\n'
               f'b: !!python/object/apply:builtins.open ["{made_by_open}", "w"]\n'
               "c: !!python/name:os.system\n")
    loaded = load_text(payload, "r.yaml")
    assert not made_by_shell.exists() and not made_by_open.exists()
    message = "tags are not allowed in recipes; recipes are data, not code; remove the tag"
    assert rendered(loaded) == [
        f"r.yaml:1:4: a: {message} '!!python/object/apply:os.system'",
        f"r.yaml:2:4: b: {message} '!!python/object/apply:builtins.open'",
        f"r.yaml:3:4: c: {message} '!!python/name:os.system'",
    ]
    assert loaded.data == {"a": None, "b": None, "c": None}
    # control: the same payload is live under an unsafe loader, so the check above is meaningful
    yaml.unsafe_load(f'b: !!python/object/apply:builtins.open ["{made_by_open}", "w"]')
    assert made_by_open.exists()


@pytest.mark.parametrize("text", ["a: !foo 3\n", "a: !!binary aGk=\n", "a: !!set {x}\n", "!x k: 1\n",
                                  "a: !!omap [{x: 1}]\n"])
def test_other_tags_are_refused(text):
    loaded = load_text(text, "r.yaml")
    assert len(loaded.errors) == 1 and "tags are not allowed in recipes" in loaded.errors[0].message


def test_standard_tags_convert():
    loaded = load_text("a: !!str 12\nb: !!float 1\nc: !!int '7'\nd: !!int x\n", "r.yaml")
    assert loaded.data == {"a": "12", "b": 1.0, "c": 7, "d": None}
    assert rendered(loaded) == ["r.yaml:4:4: d: cannot read 'x' as !!int; write a valid value or remove the tag"]


def test_alias_bomb_is_refused_quickly():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    start = time.perf_counter()
    loaded = load_text("\n".join(lines) + "\n", "bomb.yaml")
    assert time.perf_counter() - start < 2.0
    assert len(loaded.errors) == 1
    assert "aliases expand to more than 10000 values" in loaded.errors[0].message


def test_modest_anchors_and_merge_keys_work():
    loaded = load_text("base: &b {lr: 1.0, wd: 0.1}\nopt: *b\nother:\n  <<: *b\n  wd: 0.2\n", "r.yaml")
    assert loaded.errors == []
    assert loaded.data["opt"] == {"lr": 1.0, "wd": 0.1}
    assert loaded.data["other"] == {"lr": 1.0, "wd": 0.2}
    assert loaded.origins[("other", "lr")].line == 1  # where the anchored value was written


def test_recursive_alias_is_an_error():
    loaded = load_text("x: &a [*a]\n", "r.yaml")
    assert rendered(loaded) == ["r.yaml:1:4: x.0: an alias refers to the value that contains it; "
                                "remove the recursive alias"]


def test_syntax_error_is_one_error_with_position():
    loaded = load_text("name: x\nmodel: {name: a,\n", "r.yaml")
    assert loaded.data == {}
    assert rendered(loaded) == ["r.yaml:3:1: YAML syntax error: expected the node content, but found '<stream end>' "
                                "(while parsing a flow node); fix the YAML at this position"]
    loaded = load_text("name: x\nmodel:\n  name: a\n params: 1\n", "r.yaml")
    assert rendered(loaded) == ["r.yaml:4:2: YAML syntax error: expected <block end>, but found '<block mapping start>' "
                                "(while parsing a block mapping); fix the YAML at this position"]


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("- a\n- b\n", "a recipe is a mapping of sections (name:, model:, data:, ...), not a list"),
    ("just text\n", "not a single value ('just text')"),
    ("a: 1\n---\nb: 2\n", "a recipe is a single YAML document"),
    ("a: \x07\n", "special character U+0007 is not allowed in YAML"),
    ("1: a\n", "keys must be text, not int '1'; put the key in quotes: '1'"),
    ("[a]: 1\n", "keys must be text, not a list"),
    ("a: " + "[" * 400 + "]" * 400 + "\n", "nesting deeper than 100 levels"),
    ("a: " + "[" * 5000 + "\n", "nest"),
    ("x: 1" + "0" * 5000 + "\n", "this number has too many digits"),
])
def test_bad_documents_give_one_error(text, message):
    loaded = load_text(text, "r.yaml")
    assert len(loaded.errors) == 1 and message in loaded.errors[0].message, rendered(loaded)


def test_yaml12_floats_and_plain_timestamps():
    loaded = load_text("lr: 3e-5\nb: 1.0e5\nc: 2.0e-5\nday: 2021-01-01\nn: 10\n", "r.yaml")
    assert loaded.data == {"lr": 3e-5, "b": 1e5, "c": 2e-5, "day": "2021-01-01", "n": 10}


def test_garbage_and_non_utf8_files(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: x\nlabel: caf\xe9\n")
    loaded = load_recipe(latin)
    assert [e.message for e in loaded.errors] == [
        "recipe file is not UTF-8 text (byte 0xe9 at offset 18); save it as UTF-8"]
    assert loaded.errors[0].origin.line == 2
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(bytes(range(256)))
    assert len(load_recipe(garbage).errors) == 1
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfname: x\n")
    assert load_recipe(bom).data == {"name": "x"}


def test_missing_recipe_file_did_you_mean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "textlen.yaml", "name: x\n")
    loaded = load_recipe("textlen.yml")
    assert rendered(loaded) == ["textlen.yml: recipe file 'textlen.yml' not found; check the path "
                                "(did you mean 'textlen.yaml'?)"]
    assert loaded.files == ["textlen.yml"] and loaded.data == {}


# --- extends, deletion, overrides, provenance ------------------------------------------

@pytest.fixture
def chain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "recipes/base/common.yaml", """
        name: common
        optimizer:
          name: adamw
          params: {lr: 2.0e-5, weight_decay: 0.01}
        runtime:
          device: auto
          tensorboard: true
        """)
    write(tmp_path / "recipes/base/textlen.yaml", """
        extends: common.yaml
        name: textlen-base
        model: {name: minilm, params: {dropout: 0.1}}
        schedule:
          unit: step
          phases:
            - id: warmup
              for: 10
              objectives: [{name: cross_entropy}]
            - id: label
              for: 50
              objectives: [{name: cross_entropy}]
        """)
    write(tmp_path / "recipes/textlen/it.yaml", """
        name: textlen-it
        extends: ../base/textlen.yaml
        runtime:
          ~tensorboard: null
        schedule:
          phases:
            - id: label
              for: 100
            - ~id: warmup
            - id: influence
              for: {epochs: 5}
              objectives:
                - {name: influence_tuning, params: {k: 5}}
        """)
    return tmp_path


def test_extends_chain_merges_by_id_deletes_and_overrides(chain):
    loaded = load_recipe("recipes/textlen/it.yaml", ["optimizer.params.lr=3e-5", "schedule.phases.influence.for.epochs=2"])
    assert loaded.errors == [] and loaded.notices == []
    assert loaded.files == ["recipes/base/common.yaml", "recipes/base/textlen.yaml", "recipes/textlen/it.yaml"]
    assert loaded.data == {
        "name": "textlen-it",
        "optimizer": {"name": "adamw", "params": {"lr": 3e-5, "weight_decay": 0.01}},
        "runtime": {"device": "auto"},
        "model": {"name": "minilm", "params": {"dropout": 0.1}},
        "schedule": {"unit": "step", "phases": [
            {"id": "label", "for": 100, "objectives": [{"name": "cross_entropy"}]},
            {"id": "influence", "for": {"epochs": 2}, "objectives": [{"name": "influence_tuning", "params": {"k": 5}}]},
        ]},
    }
    o = loaded.origins
    child, textlen, common = "recipes/textlen/it.yaml", "recipes/base/textlen.yaml", "recipes/base/common.yaml"
    assert o[("name",)] == Origin(child, 1, 1, "file")
    assert o[("optimizer", "name")] == Origin(common, 3, 3, "base")
    assert o[("optimizer", "params", "weight_decay")] == Origin(common, 4, 24, "base")
    assert o[("optimizer", "params", "lr")] == Origin(source="cli")
    assert o[("runtime", "device")] == Origin(common, 6, 3, "base")
    assert o[("schedule", "unit")] == Origin(textlen, 5, 3, "base")
    assert o[("schedule", "phases", 0)] == Origin(child, 7, 7, "file")  # the child mentions 'label'
    assert o[("schedule", "phases", 0, "for")] == Origin(child, 8, 7, "file")
    assert o[("schedule", "phases", 0, "objectives")] == Origin(textlen, 12, 7, "base")
    assert o[("schedule", "phases", 0, "objectives", 0, "name")] == Origin(textlen, 12, 21, "base")
    assert o[("schedule", "phases", 1, "for")] == Origin(child, 11, 7, "file")
    assert o[("schedule", "phases", 1, "for", "epochs")] == Origin(source="cli")
    assert set(o) >= {(), ("schedule",), ("schedule", "phases"), ("schedule", "phases", 1, "objectives", 0, "params", "k")}
    assert str(origin_of(loaded, ("schedule", "phases", "label", "objectives", 0, "weight"))) == f"{textlen}:12 (base)"


def test_every_data_path_has_an_origin(chain):
    loaded = load_recipe("recipes/textlen/it.yaml")

    def paths(value, path=()):
        yield path
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for k, v in items:
            yield from paths(v, path + (k,))

    assert set(paths(loaded.data)) == set(loaded.origins)


def test_extends_cycle_names_the_chain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.yaml", "extends: b.yaml\nx: 1\n")
    write(tmp_path / "b.yaml", "y: 2\nextends: [a.yaml]\n")
    loaded = load_recipe("a.yaml")
    assert rendered(loaded) == ["b.yaml:2:11: extends: extends cycle: a.yaml -> b.yaml -> a.yaml; "
                                "remove one of these extends"]
    assert loaded.data == {"y": 2, "x": 1}


def test_missing_base_points_at_extends_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "recipes/base/textlen.yaml", "name: base\n")
    write(tmp_path / "recipes/x/r.yaml", "name: r\nextends: ../base/textlem.yaml\n")
    loaded = load_recipe("recipes/x/r.yaml")
    assert rendered(loaded) == ["recipes/x/r.yaml:2:1: extends: base file 'recipes/base/textlem.yaml' not found; "
                                "check the path (did you mean 'textlen.yaml'?)"]


def test_several_bases_merge_in_order_and_diamond_reads_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "root.yaml", "a: 0\nb: 0\nc: 0\n")
    write(tmp_path / "left.yaml", "extends: root.yaml\na: 1\nb: 1\n")
    write(tmp_path / "right.yaml", "extends: root.yaml\nb: 2\n")
    write(tmp_path / "top.yaml", "extends: [left.yaml, right.yaml]\nc: 3\n")
    loaded = load_recipe("top.yaml")
    assert loaded.errors == []
    assert loaded.data == {"a": 1, "b": 2, "c": 3}
    assert loaded.files == ["root.yaml", "left.yaml", "right.yaml", "top.yaml"]
    assert loaded.origins[("a",)] == Origin("left.yaml", 2, 1, "base")


def test_errors_in_a_base_are_reported_with_base_origin(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "base.yaml", "lr: 1\nlr: 2\n~gone: null\n")
    write(tmp_path / "r.yaml", "extends: base.yaml\nx: 1\n")
    loaded = load_recipe("r.yaml")
    assert rendered(loaded) == [
        "base.yaml:2:1: lr: duplicate key 'lr' (first at line 1); remove one",
        "base.yaml:3:1: ~gone: '~gone' deletes nothing: there is no 'gone' here; remove '~gone' or correct the key",
    ]
    assert loaded.errors[0].origin.source == "base"


@pytest.mark.parametrize("extends", ["[1, 2]", "''", "{a: b}"])
def test_extends_must_be_paths(extends):
    loaded = load_text(f"extends: {extends}\nx: 1\n", "r.yaml")
    assert len(loaded.errors) == 1
    assert loaded.errors[0].message.startswith("extends names a base recipe file or a list of them")


def test_load_text_resolves_extends_from_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "base/b.yaml", "model: {name: m, params: {p: 1}}\n")
    loaded = load_text("extends: base/b.yaml\nmodel: {name: n}\n", "<stdin>")
    assert loaded.data == {"model": {"name": "n"}}
    assert loaded.notices == ["model: name changed m->n; parent params dropped"]
    assert loaded.files == ["base/b.yaml", "<stdin>"]


def test_name_change_drops_parent_params_with_notice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "base.yaml", """
        schedule:
          phases:
            - id: influence
              objectives:
                - {id: x, name: a, weight: 2, params: {p: 1, q: 2}}
        """)
    write(tmp_path / "r.yaml", """
        extends: base.yaml
        schedule:
          phases:
            - id: influence
              objectives:
                - {id: x, name: b, params: {r: 3}}
        """)
    loaded = load_recipe("r.yaml")
    assert loaded.errors == []
    assert loaded.data["schedule"]["phases"][0]["objectives"] == [{"id": "x", "name": "b", "weight": 2, "params": {"r": 3}}]
    assert loaded.notices == ["schedule.phases.influence.objectives.x: name changed a->b; parent params dropped"]
    assert loaded.origins[("schedule", "phases", 0, "objectives", 0, "weight")].source == "base"


def test_dotted():
    data = {"schedule": {"phases": [{"id": "label", "for": 3}, {"name": "n"}, {"x": 1}]}, "seeds": [1, 2]}
    assert dotted(("schedule", "phases", 0, "for"), data) == "schedule.phases.label.for"
    assert dotted(("schedule", "phases", 1), data) == "schedule.phases.n"
    assert dotted(("schedule", "phases", 2, "x"), data) == "schedule.phases.2.x"
    assert dotted(("seeds", 1), data) == "seeds.1"
    assert dotted(("schedule", "phases", 0, "for")) == "schedule.phases.0.for"
    assert dotted(("missing", "deeper", 3), data) == "missing.deeper.3"
    assert dotted((), data) == ""


def test_origin_of_falls_back_to_nearest_ancestor():
    loaded = load_text("name: x\nmodel:\n  name: m\n", "r.yaml")
    assert origin_of(loaded, ("model", "params", "lr")) == Origin("r.yaml", 2, 1, "file")
    assert origin_of(loaded, ("nothing",)) == Origin("r.yaml", 1, 1, "file")
    assert origin_of(loaded, ("model", "name")) == Origin("r.yaml", 3, 3, "file")


# --- robustness ------------------------------------------------------------------------

VALID = textwrap.dedent("""
    name: fuzz
    extends: BASE_PATH
    seeds: [1, 2]
    base_anchor: &opt {name: adamw, params: {lr: 3e-5}}
    optimizer: *opt
    other: {<<: *opt, extra: 1}
    model: {name: minilm, params: {dropout: 0.1}}
    runtime:
      ~tensorboard: null
    schedule:
      phases:
        - ~id: warmup
        - id: label
          for: 50
          objectives: [{name: cross_entropy}, {id: x, name: focal, params: {gamma: 2}}]
        - id: influence
          repeat: until_end
          phases: [{id: inner, for: 2}]
    """).lstrip()
BASE = textwrap.dedent("""
    name: base
    runtime: {tensorboard: true}
    schedule:
      phases:
        - {id: warmup, for: 1}
        - {id: label, for: 2, objectives: [{id: x, name: ce, params: {a: 1}}]}
    """).lstrip()
SNIPPETS = ["~", "!!python/object/apply:os.system ['true']", "!foo", "&a", "*a", "<<: *a", "- ", ": ", "{", "}",
            "[", "]", "\t", '"', "'", "~id: label", "extends: x.yaml", "\n  ", "---\n", "? ", "|\n", "%YAML 1.1\n",
            "\x00", "\ufeff", "- ~id: nope\n", "!!int", "1e5", "null", "&b [*b]", "=", "#"]


def _mutations() -> st.SearchStrategy[str]:
    snippet = st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=8))

    def mutate(draw_args):
        text, ops = draw_args
        for kind, pos, length, piece in ops:
            pos = pos % (len(text) + 1)
            if kind == 0:
                text = text[:pos] + piece + text[pos:]
            elif kind == 1:
                text = text[:pos] + text[pos + length:]
            elif kind == 2:
                lines = text.split("\n")
                i = pos % len(lines)
                lines.insert(i, lines[(i + length) % len(lines)])
                text = "\n".join(lines)
            else:
                text = text[:pos] + piece + text[pos + length:]
        return text

    op = st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 40), snippet)
    return st.tuples(st.just(VALID), st.lists(op, min_size=1, max_size=6)).map(mutate)


@pytest.fixture(scope="module")
def base_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("fuzz") / "base.yaml"
    path.write_text(BASE)
    return str(path)


DOCUMENTS = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace")),
    _mutations(),
)
OVERRIDES = st.lists(st.one_of(
    st.sampled_from(["a.b=1", "~runtime", "schedule.phases.label.for=3", "schedule.phases.nope.x=1", "q",
                     "x=!!python/name:os.system", "~schedule.phases.0", "seeds.1=[1, {a: 2}]", "m={~k: 1}"]),
    st.text(max_size=20),
    st.builds(lambda head, seg, tail: head + seg + tail,
              st.sampled_from(["seeds.", "schedule.phases.", "~schedule.phases.", "~seeds.", "optimizer.",
                               "schedule.phases.label.objectives."]),
              st.one_of(st.text(max_size=4), st.sampled_from(["0", "1", "²", "9" * 5000, "label", "x"])),
              st.sampled_from(["", "=1", ".for=2", "=", ".params.k=[1"]))), max_size=3)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=DOCUMENTS, overrides=OVERRIDES)
def test_loader_never_raises(base_path, text, overrides):
    loaded = load_text(text.replace("BASE_PATH", base_path), "fuzz.yaml", overrides)
    assert isinstance(loaded, LoadedRecipe)
    assert isinstance(loaded.data, dict)
    assert all(isinstance(e.render(), str) for e in loaded.errors)
    assert () in loaded.origins


def test_valid_fuzz_seed_recipe_loads_cleanly(base_path):
    loaded = load_text(VALID.replace("BASE_PATH", base_path), "fuzz.yaml")
    assert loaded.errors == [], [e.render() for e in loaded.errors]
    assert [p["id"] for p in loaded.data["schedule"]["phases"]] == ["label", "influence"]
    assert loaded.notices == ["schedule.phases.label.objectives.x: name changed ce->focal; parent params dropped"]
