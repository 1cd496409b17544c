"""``registry.StrictParams``: the one place of the house Params settings."""
import pytest
from pydantic import Field, ValidationError

import registry


def test_strict_params_rejects_unknown_keys() -> None:
    class Params(registry.StrictParams):
        beta: float = Field(0.1, ge=0.0)

    assert Params(beta=0.5).beta == 0.5
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Params(bta=0.5)


def test_every_builtin_params_is_strict() -> None:
    reg = registry.load_all()
    loose = [f"{kind}/{name}" for kind in registry.KINDS for name in reg.names(kind)
             if reg.entry(kind, name).plugin is None and not issubclass(reg.get(kind, name).Params, registry.StrictParams)]
    assert loose == []
    assert issubclass(registry.Component.Params, registry.StrictParams)
