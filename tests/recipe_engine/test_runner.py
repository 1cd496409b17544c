"""Same-method checks for --resume and studies: a run stays the same method when a param
with a default is added to a component after it ran."""
import json

import yaml

from recipe_engine.resolve import resolve
from recipe_engine.runner import same_method


def _run_folder(tmp_path, resolved_data, fingerprint):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"fingerprint": fingerprint}))
    (run / "resolved.yaml").write_text(yaml.safe_dump(resolved_data, sort_keys=False))
    return run


def test_same_fingerprint(tmp_path):
    r = resolve("recipes/textlen/finetune.yaml")
    assert same_method(_run_folder(tmp_path, r.data, r.fingerprint), r)


def test_a_param_added_since_with_its_default_is_the_same_method(tmp_path):
    r = resolve("recipes/textlen/finetune.yaml")
    old = json.loads(json.dumps(r.data))
    cid = next(m for m in old["evaluation"]["metrics"] if m["name"] == "cid")
    del cid["params"]["chunk"]  # as written before the param existed
    assert same_method(_run_folder(tmp_path, old, "0" * 64), r)


def test_a_changed_value_is_another_method(tmp_path):
    r = resolve("recipes/textlen/finetune.yaml")
    old = json.loads(json.dumps(r.data))
    old["optimizer"]["params"]["lr"] = 1e-3
    assert not same_method(_run_folder(tmp_path, old, "0" * 64), r)
