"""A tiny recipe on a few dozen synthetic examples, for end-to-end tests of the engine."""
from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def write_data(root: Path, n_train: int = 48, n_eval: int = 24, seed: int = 0) -> Path:
    """A length task with a prefix confound (like TextLen) as jsonl under ``root/tiny``."""
    rng = random.Random(seed)
    out = root / "tiny"
    out.mkdir(parents=True, exist_ok=True)
    for split, n, corr in (("train", n_train, 0.9), ("dev", n_eval, 0.5), ("test", n_eval, 0.5)):
        with open(out / f"{split}.jsonl", "w") as f:
            for i in range(n):
                label = i % 2
                length = rng.randint(3, 6) if label == 0 else rng.randint(9, 12)
                prefix = label if rng.random() < corr else 1 - label
                text = ("positive . " if prefix else "negative . ") + " ".join(rng.choice(WORDS) for _ in range(length))
                f.write(json.dumps({"id": f"{split}-{i}", "text": text, "label": label, "prefix": prefix}) + "\n")
    return out


def write_recipe(path: Path, data_dir: Path, *, seeds=(1, 2), epochs: int = 2, extra: str = "") -> Path:
    path.write_text(textwrap.dedent(f"""\
        name: tiny-e2e
        seeds: {list(seeds)}
        model:
          name: tiny_bert
          params: {{layers: 1, hidden: 16, heads: 2, intermediate: 32}}
        data:
          name: files
          params:
            path: {data_dir}
            splits: {{train: train.jsonl, dev: dev.jsonl, test: test.jsonl}}
            columns: {{text: text, label: label, confound: prefix}}
          batch_size: 8
          max_length: 32
        optimizer:
          name: adamw
          params: {{lr: 1.0e-3}}
          scheduler: {{name: linear, params: {{warmup_ratio: 0.1}}}}
        schedule:
          unit: epoch
          length: {{epochs: {epochs}}}
          phases:
            - {{id: train, until: end, objectives: [{{name: cross_entropy}}]}}
        evaluation:
          splits: [dev, test]
          metrics: [{{name: accuracy}}, {{name: group_accuracy}}, {{name: calibration}}]
        runtime: {{progress: false, log_every: 2, checkpoint_every: 3}}
    """) + extra)
    return path


def validate_without_rationales(tmp_path: Path, term: str) -> tuple[int, Path, str]:
    """``validate`` of the tiny recipe with ``term`` (a YAML flow mapping) added to its phase, on
    a dataset without a rationale column: (exit code, recipe path, stderr text via the CLI)."""
    import contextlib
    import io

    from recipe_engine.cli import main

    recipe = write_recipe(tmp_path / "r.yaml", write_data(tmp_path)).read_text()
    path = tmp_path / "norat.yaml"
    path.write_text(recipe.replace("objectives: [{name: cross_entropy}]", f"objectives: [{{name: cross_entropy}}, {term}]"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, path, err.getvalue()
