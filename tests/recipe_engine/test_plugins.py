"""Third-party components through entry points, without pip: a throwaway ``*.dist-info``
on ``sys.path`` is what ``pip install`` would leave in site-packages, and
``importlib.metadata`` finds it the same way.

The plugin under test is the shipped example (examples/plugin_example): its package is
copied next to the fake dist-info.  Every test runs on a copy of the global registry with
``_loaded`` reset (a fresh process, as far as the registry can tell); both are restored
afterwards, the plugin modules are dropped from ``sys.modules`` and the cached schema
models cleared, so other tests never see a plugin.
"""
from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

import registry
from recipe_engine import schema
from recipe_engine.cli import main
from recipe_engine.load import display_path
from registry.types import Batch, ClassifierOutput

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin_example"
FIXTURES = Path(__file__).parent / "fixtures" / "plugins"
DIST = "recipe-engine-confidence-penalty"
EXAMPLE_EP = {"recipe_engine.objectives": {"confidence_penalty": "confidence_penalty_plugin.objective:ConfidencePenalty"}}
PLUGIN_PACKAGES = ("confidence_penalty_plugin", "dupe_plugin", "other_dupe_plugin", "broken_plugin")

Install = Callable[..., Path]


def _write_dist(site: Path, dist: str, entry_points: dict[str, dict[str, str]], version: str = "0.1") -> None:
    """``<dist>-<version>.dist-info`` with METADATA and entry_points.txt, as pip writes them."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    groups = [f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in eps.items())
              for group, eps in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(groups))


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``install(dist, entry_points, modules={path: source}, example=False)``: a fake
    installed distribution; the registry then loads it as a fresh process would."""
    registry.load_all()  # built-ins are imported once per process; the copy below keeps them
    monkeypatch.setattr(registry, "REGISTRY", copy.deepcopy(registry.REGISTRY))
    monkeypatch.setattr(registry, "_loaded", False)
    schema._recipe_model.cache_clear()
    site = tmp_path / "site-packages"
    site.mkdir()

    def _install(dist: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None,
                 example: bool = False, version: str = "0.1") -> Path:
        if example:
            shutil.copytree(EXAMPLE / "confidence_penalty_plugin", site / "confidence_penalty_plugin")
        for rel, source in (modules or {}).items():
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            (site / rel).write_text(source)
        _write_dist(site, dist, entry_points, version)
        return site

    yield _install
    for name in [m for m in sys.modules if m.split(".")[0] in PLUGIN_PACKAGES]:
        del sys.modules[name]
    schema._recipe_model.cache_clear()  # models built with the plugin must not outlive it


@pytest.fixture
def example_plugin(install: Install, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = install(DIST, EXAMPLE_EP, example=True)
    monkeypatch.syspath_prepend(str(site))
    return site


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------- the example plugin, end to end
def test_ls_lists_the_plugin_with_its_distribution(example_plugin, capsys):
    code, out, err = _run(capsys, "ls", "objectives")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert rows["confidence_penalty"].split()[-1] == DIST
    assert "cross-entropy minus beta * entropy" in rows["confidence_penalty"]
    assert rows["cross_entropy"].split()[-1] == "built-in"
    assert registry.REGISTRY.plugins == {DIST: "0.1"}


def test_explain_shows_params_paper_and_module(example_plugin, capsys):
    code, out, err = _run(capsys, "explain", "confidence_penalty")
    assert code == 0, err
    assert f"confidence_penalty  (objective, {DIST}: confidence_penalty_plugin.objective)" in out
    assert 'paper:    Pereyra et al. 2017, "Regularizing neural networks by penalizing confident output distributions", eq. 2' in out
    assert "equation: L = 1/|B| sum_i [ -log p(y_i|x_i) - beta * H(p(.|x_i)) ]" in out
    assert "requires: nothing beyond text and label" in out
    assert "    beta: float (default 0.1)" in out
    assert "weight of the entropy term" in out
    assert "    threshold: float | None (default null)" in out


def test_validate_accepts_the_example_recipe(example_plugin, capsys):
    recipe = EXAMPLE / "recipes" / "textlen_confidence_penalty.yaml"
    code, out, err = _run(capsys, "validate", str(recipe))
    assert (code, err) == (0, "")
    assert "ok (textlen-confidence-penalty, fingerprint " in out
    from recipe_engine.resolve import resolve

    terms = resolve(recipe).recipe.schedule.phases[0].objectives
    assert [(t.name, t.params.beta) for t in terms] == [("confidence_penalty", 0.5)]


def test_validate_rejects_a_misspelled_plugin_param_with_did_you_mean(example_plugin, capsys):
    path = display_path(str(FIXTURES / "misspelled_param.yaml"))
    code, _, err = _run(capsys, "validate", path)
    assert code == 1
    assert err.strip() == (f"{path}:12:20: schedule.phases.train.objectives.confidence_penalty.params.bta: "
                           "unknown key 'bta'; remove it or fix its spelling (did you mean 'beta'?)")


def test_unknown_name_suggests_the_plugin_and_lists_installed_plugins(example_plugin, capsys):
    path = display_path(str(FIXTURES / "misspelled_name.yaml"))
    code, _, err = _run(capsys, "validate", path)
    assert code == 1
    assert err.strip() == (
        f"{path}:11:12: schedule.phases.train.objectives.confidence_penalti.name: unknown objective 'confidence_penalti'; "
        "did you mean 'confidence_penalty'?; registered: adversarial, confidence_penalty, cross_entropy, "
        f"embedding_tuning, hildif, ig_variance, influence_tuning, rationale_erasure, rationale_extractor, rationale_margin; plugins: {DIST} 0.1"
    )


def test_schema_command_contains_the_plugin(example_plugin, capsys):
    code, out, err = _run(capsys, "schema")
    assert code == 0, err
    defs = json.loads(out)["$defs"]
    term = defs["objectives_confidence_penalty"]
    assert term["properties"]["name"]["const"] == "confidence_penalty"
    assert term["description"].startswith("cross-entropy minus beta")
    params = defs[term["properties"]["params"]["$ref"].rsplit("/", 1)[-1]]
    assert set(params["properties"]) == {"beta", "threshold"}
    assert params["additionalProperties"] is False
    assert "weight of the entropy term" in params["properties"]["beta"]["description"]


def test_schema_model_is_rebuilt_when_a_plugin_appears(install, monkeypatch):
    without = schema.recipe_model()
    assert schema.recipe_model() is without  # cached per registry snapshot
    site = install(DIST, EXAMPLE_EP, example=True)
    monkeypatch.syspath_prepend(str(site))
    registry.load_all(reload_plugins=True)
    with_plugin = schema.recipe_model()
    assert with_plugin is not without
    phase = {"id": "a", "for": 1, "objectives": [{"name": "confidence_penalty", "params": {"beta": 2.0}}]}
    recipe = with_plugin.model_validate({
        "name": "r", "model": {"name": "tiny_bert"}, "data": {"name": "textlen"}, "optimizer": {"name": "adamw"},
        "schedule": {"phases": [phase]},
    })
    assert recipe.schedule.phases[0].objectives[0].params.beta == 2.0


def test_the_example_plugin_needs_only_the_registry():
    """A third-party component imports ``registry``, never ``recipe_engine`` (fresh interpreter)."""
    probe = ("import sys, confidence_penalty_plugin.objective; "
             "print(sorted(m for m in sys.modules if m.startswith('recipe_engine')))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLE), str(ROOT)]))
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------- broken and clashing plugins
CLASH = '''
from registry.base import Objective


class {cls}(Objective):
    summary = "a second objective under a taken name"
'''


def test_plugin_reusing_a_builtin_name_is_an_error_naming_both_modules(install, monkeypatch, capsys):
    site = install("dupe-plugin", {"recipe_engine.objectives": {"cross_entropy": "dupe_plugin.objective:OtherCE"}},
                   {"dupe_plugin/__init__.py": "", "dupe_plugin/objective.py": CLASH.format(cls="OtherCE")})
    monkeypatch.syspath_prepend(str(site))
    code, out, err = _run(capsys, "ls", "objectives")
    assert code == 2 and out == ""
    assert err.strip() == ("error: two objectives are registered as 'cross_entropy': "
                           "registry.objectives.cross_entropy.CrossEntropy and dupe_plugin.objective.OtherCE; "
                           "rename one of them")


def test_two_plugins_with_one_name_is_an_error_naming_both_modules(install, monkeypatch, capsys):
    ep = "recipe_engine.objectives"
    install("dupe-plugin", {ep: {"smooth": "dupe_plugin.objective:Smooth"}},
            {"dupe_plugin/__init__.py": "", "dupe_plugin/objective.py": CLASH.format(cls="Smooth")})
    site = install("other-dupe-plugin", {ep: {"smooth": "other_dupe_plugin.objective:Smooth"}},
                   {"other_dupe_plugin/__init__.py": "", "other_dupe_plugin/objective.py": CLASH.format(cls="Smooth")})
    monkeypatch.syspath_prepend(str(site))
    code, _, err = _run(capsys, "ls")
    assert code == 2
    assert "error: two objectives are registered as 'smooth': " in err
    assert "dupe_plugin.objective.Smooth" in err and "other_dupe_plugin.objective.Smooth" in err


def test_a_plugin_that_fails_to_import_is_a_warning_not_a_crash(install, monkeypatch, capsys):
    site = install("broken-plugin", {"recipe_engine.objectives": {"broken": "broken_plugin:Broken"}},
                   {"broken_plugin/__init__.py": "import a_module_that_is_not_installed\n"})
    monkeypatch.syspath_prepend(str(site))
    code, out, err = _run(capsys, "ls", "objectives")
    assert code == 0
    assert "cross_entropy" in out and "broken" not in out
    assert err.strip() == ("warning: plugin broken-plugin: entry point broken = broken_plugin:Broken failed to "
                           "load: No module named 'a_module_that_is_not_installed'")
    code, out, err = _run(capsys, "validate", str(ROOT / "recipes" / "quickstart.yaml"))
    assert code == 0 and ": ok (quickstart" in out


def test_the_registry_is_restored_after_a_plugin_test():
    """Runs after the tests above (file order): no plugin left in the global registry."""
    reg = registry.load_all()
    assert "confidence_penalty" not in reg.names("objectives")
    assert reg.plugins == {} and reg.plugin_errors == []
    assert "confidence_penalty_plugin" not in sys.modules


# ---------------------------------------------------------------- the example's math
@functools.cache
def _example_module():
    """The example's objective module, imported from its file under a private name."""
    name = "_confidence_penalty_example"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE / "confidence_penalty_plugin" / "objective.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the Params annotations through it
    spec.loader.exec_module(module)
    return module


def _naive(logits: torch.Tensor, labels: torch.Tensor, beta: float, threshold: float | None) -> float:
    """Pereyra et al. 2017 eq. 2, one example at a time, in float64 Python arithmetic."""
    import math

    total = 0.0
    for row, y in zip(logits.tolist(), labels.tolist()):
        z = math.log(sum(math.exp(v) for v in row))
        p = [math.exp(v - z) for v in row]
        entropy = -sum(pc * math.log(pc) for pc in p)
        penalty = -entropy if threshold is None else max(0.0, threshold - entropy)
        total += -(row[y] - z) + beta * penalty
    return total / len(labels)


@pytest.mark.parametrize("beta,threshold", [(0.0, None), (0.7, None), (2.0, 0.9)])
def test_confidence_penalty_matches_a_naive_float64_reference(beta, threshold):
    mod = _example_module()
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, 4, (7,), generator=gen)
    loss, entropy = mod.confidence_penalty_loss(logits, labels, beta, threshold)
    assert loss.item() == pytest.approx(_naive(logits, labels, beta, threshold), rel=1e-12, abs=1e-12)
    assert bool(((entropy >= 0) & (entropy <= torch.log(torch.tensor(4.0)) + 1e-12)).all())


def test_confidence_penalty_gradient_is_the_closed_form():
    """dL/dz = (p - onehot(y) + beta * p * (log p + H)) / B; and torch.autograd.gradcheck."""
    mod = _example_module()
    gen = torch.Generator().manual_seed(1)
    logits = (torch.randn(5, 3, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    labels = torch.randint(0, 3, (5,), generator=gen)
    beta = 0.8
    loss, _ = mod.confidence_penalty_loss(logits, labels, beta)
    (grad,) = torch.autograd.grad(loss, logits)
    p = torch.softmax(logits.detach(), -1)
    log_p = p.log()
    entropy = -(p * log_p).sum(-1, keepdim=True)
    expected = (p - torch.nn.functional.one_hot(labels, 3) + beta * p * (log_p + entropy)) / 5
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-14)
    assert torch.autograd.gradcheck(lambda z: mod.confidence_penalty_loss(z, labels, beta, 1.0)[0], (logits,))


def test_confidence_penalty_objective_reads_the_model_logits():
    mod = _example_module()

    class Fixed(torch.nn.Module):
        def __init__(self, logits: torch.Tensor):
            super().__init__()
            self.logits = torch.nn.Parameter(logits)

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            return ClassifierOutput(logits=self.logits, pooled=self.logits)

    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    batch = Batch(input_ids=torch.zeros(2, 3, dtype=torch.long), attention_mask=torch.ones(2, 3, dtype=torch.long),
                  labels=torch.tensor([0, 1]), index=torch.arange(2))
    objective = mod.ConfidencePenalty(mod.ConfidencePenalty.Params(beta=0.5))
    loss = objective.loss(Fixed(logits), batch)
    expected, entropy = mod.confidence_penalty_loss(logits.double(), batch.labels, 0.5)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert objective.logs()["entropy"] == pytest.approx(entropy.mean().item(), rel=1e-6)
    loss.backward()
