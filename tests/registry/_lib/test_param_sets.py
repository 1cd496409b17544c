import pytest
from pydantic import BaseModel, ConfigDict

from registry._lib.param_sets import GlobSet, LastNLayers, ParamSpec, select_parameters, spec_label
from registry.errors import UserError
from tests.registry._lib.fakes import tiny_classifier


def names(model, spec):
    return [n for n, _ in select_parameters(model, spec)]


def test_all_and_no_word_embeddings():
    m = tiny_classifier(layers=3)
    all_names = [n for n, _ in m.named_parameters()]
    assert names(m, "all") == all_names
    assert names(m, "no_word_embeddings") == [n for n in all_names if n != "encoder.embeddings.word_embeddings.weight"]


def test_head_and_last_n_layers():
    m = tiny_classifier(layers=3)
    assert names(m, "head") == ["head.weight", "head.bias"]
    got = names(m, {"last_n_layers": 1})
    assert all(n.startswith(("encoder.encoder.layer.2.", "encoder.pooler.", "head.")) for n in got)
    assert any(n.startswith("encoder.encoder.layer.2.") for n in got)
    assert "encoder.pooler.dense.weight" in got and "head.bias" in got
    assert len(names(m, {"last_n_layers": 2})) > len(got)


def test_glob_matches_a_dotted_suffix():
    m = tiny_classifier(layers=3)
    got = names(m, {"glob": "encoder.layer.1.*"})
    assert got and all(n.startswith("encoder.encoder.layer.1.") for n in got)
    assert names(m, {"glob": ["*.LayerNorm.bias", "head.weight"]})[-1] == "head.weight"


def test_bad_specs_raise_user_errors():
    m = tiny_classifier(layers=2)
    with pytest.raises(UserError, match="last_n_layers is 5 but the encoder has 2 layers"):
        select_parameters(m, {"last_n_layers": 5})
    with pytest.raises(UserError, match="selects no parameter"):
        select_parameters(m, {"glob": "nothing.*"})


def test_spec_is_a_pydantic_field():
    class P(BaseModel):
        model_config = ConfigDict(extra="forbid")
        parameters: ParamSpec = "all"

    assert isinstance(P.model_validate({"parameters": {"last_n_layers": 2}}).parameters, LastNLayers)
    assert isinstance(P.model_validate({"parameters": {"glob": "a.*"}}).parameters, GlobSet)
    assert P.model_validate({"parameters": "head"}).parameters == "head"
    with pytest.raises(ValueError):
        P.model_validate({"parameters": "everything"})
    with pytest.raises(ValueError):
        P.model_validate({"parameters": {"last_n_layers": 0}})
    assert spec_label({"last_n_layers": 2}) == "last_n_layers=2"
