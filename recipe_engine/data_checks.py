"""What a run checks of its data before training, whatever the dataset: the splits it uses
are not empty and their ids unique, and a confound the recipe relies on has two known
values in the training split.  Fatal problems are UserErrors; the rest are notes ``run`` prints."""
from __future__ import annotations

import registry
from recipe_engine.errors import UserError
from recipe_engine.plan import leaf_terms
from recipe_engine.schema import Recipe
from registry.datasets._checks import check_unique_ids
from registry.types import MISSING_CONFOUND, DatasetBundle


def check_bundle(recipe: Recipe, bundle: DatasetBundle) -> list[str]:
    """Raise on data the recipe cannot run on; return notes on data it can, but should know about."""
    used = [recipe.data.train_split, *recipe.evaluation.splits]
    for name in dict.fromkeys(used):
        split = bundle.splits[name]
        if len(split) == 0:
            raise UserError(f"data: split {name!r} of dataset {recipe.data.name!r} is empty; fix: give it rows, or "
                            + ("choose another data.train_split" if name == recipe.data.train_split
                               else "leave it out of evaluation.splits"))
        check_unique_ids([str(i) for i in split.ids], name, f"dataset {recipe.data.name!r}")
    train = bundle.splits[recipe.data.train_split]
    known = sorted({c for c in (train.confound or []) if c != MISSING_CONFOUND})
    needs = sorted({t.name for _, t in leaf_terms(recipe.schedule.phases)
                    if "confound" in registry.get("objectives", t.name).requires})
    if train.confound is None or len(known) >= 2:
        return []
    what = ("every row's confound is unknown" if not known
            else f"every row with a known confound has the same value ({_name(bundle, known[0])})")
    if needs:
        raise UserError(f"data: split {train.name!r}: {what}, so {', '.join(needs)} cannot contrast confound groups; "
                        "fix: map a confound column with at least two values (data.params.columns.confound)")
    return [f"{train.name}: {what}; group metrics and confound objectives cannot contrast groups"]


def _name(bundle: DatasetBundle, value: int) -> str:
    names = bundle.confound_names or []
    return f"{names[value]!r}" if value < len(names) else str(value)
