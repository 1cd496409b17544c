"""A recipe's dataset, loaded once per data setting, and the timeline it compiles to on it:
the one place ``run``, ``show --schedule``, ``validate`` and ``diff`` get them from."""
from __future__ import annotations

import json
import registry
from recipe_engine.plan import Timeline, timeline_for, train_view
from recipe_engine.schema import Recipe
from registry.datasets.data_root import resolve_data_root
from registry.types import DatasetBundle

_BUNDLES: dict[str, DatasetBundle] = {}


def load_bundle(recipe: Recipe, fresh: bool = False) -> DatasetBundle:
    """The recipe's dataset (every split), from its data root; cached per data setting
    (``fresh``: read the files again, as ``run`` does, and refresh the cache)."""
    key = json.dumps([recipe.data.name, recipe.data.params.model_dump(mode="json"), recipe.runtime.data_root],
                     sort_keys=True)
    if fresh or key not in _BUNDLES:
        dataset = registry.build("datasets", recipe.data.name, recipe.data.params)
        _BUNDLES[key] = dataset.load(resolve_data_root(recipe.runtime.data_root))
    return _BUNDLES[key]


def recipe_timeline(recipe: Recipe) -> Timeline:
    """The timeline every seed of ``recipe`` trains (probe counts do not depend on the seed)."""
    bundle = load_bundle(recipe)
    return timeline_for(recipe, train_view(recipe, bundle, recipe.seeds[0]))
