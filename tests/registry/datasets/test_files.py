"""The generic ``files`` dataset: local JSONL/CSV/TSV, the hub path, column mapping errors, rationales."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import registry
from registry.errors import UserError

ROWS = {
    "train": [
        {"id": "a1", "premise": "A man sleeps .", "hypothesis": "Someone rests .", "gold": "entailment", "hl": [0, 1, 1, 0], "hh": [0, 1, 0], "genre": "x", "bias": 1},
        {"id": "a2", "premise": "Dogs bark .", "hypothesis": "Cats meow loudly .", "gold": "contradiction", "hl": [1, 0, 0], "hh": None, "genre": "y", "bias": None},
        {"id": "a3", "premise": "It rains .", "hypothesis": "It is wet .", "gold": "neutral", "hl": None, "hh": [0, 0, 1, 0], "genre": "x", "bias": 0},
    ],
    "dev": [
        {"id": "b1", "premise": "Birds fly .", "hypothesis": "Birds move .", "gold": "entailment", "hl": [1, 1, 0], "hh": [0, 0, 0], "genre": "z", "bias": 0},
    ],
}


def _write_jsonl(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in ROWS.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _params(**over):
    p = {
        "path": "nli",
        "splits": {"train": "train.jsonl", "dev": "dev.jsonl"},
        "columns": {"text": "premise", "text_pair": "hypothesis", "label": "gold"},
    }
    p.update(over)
    return p


def test_jsonl_relative_to_the_data_root(tmp_path):
    _write_jsonl(tmp_path / "nli")
    ds = registry.build("dataset", "files", _params(meta_columns=["genre"]))
    assert ds.columns() == {"text", "text_pair", "label"} and ds.split_names() == ("train", "dev")
    bundle = ds.load(tmp_path)
    assert bundle.label_names == ["contradiction", "entailment", "neutral"]  # sorted unique strings
    assert bundle.files == [tmp_path / "nli" / "train.jsonl", tmp_path / "nli" / "dev.jsonl"]
    train = bundle.splits["train"]
    assert train.ids == ["a1", "a2", "a3"] and train.label == [1, 0, 2]
    assert train.text_pair == ["Someone rests .", "Cats meow loudly .", "It is wet ."]
    assert train.meta == {"genre": ["x", "y", "x"]} and train.confound is None and train.rationale is None
    assert bundle.splits["dev"].label == [1]


def test_label_names_given_and_confound_with_missing_values(tmp_path):
    _write_jsonl(tmp_path / "nli")
    names = ["entailment", "neutral", "contradiction"]
    params = _params(label_names=names, columns={"text": "premise", "label": "gold", "confound": "bias"}, confound_names=["no", "yes"])
    bundle = registry.build("dataset", "files", params).load(tmp_path)
    train = bundle.splits["train"]
    assert train.label == [0, 2, 1] and train.confound == [1, -1, 0] and bundle.confound_names == ["no", "yes"]
    bad = _params(label_names=["entailment", "neutral", "contradictoin"])
    with pytest.raises(UserError, match=r"'contradiction' .*did you mean 'contradictoin'"):
        registry.build("dataset", "files", bad).load(tmp_path)


def test_confound_column_is_the_mapped_source_column(tmp_path):
    _write_jsonl(tmp_path / "nli")
    params = _params(columns={"text": "premise", "label": "gold", "confound": "bias"})
    bundle = registry.build("dataset", "files", params).load(tmp_path)
    assert bundle.confound_column == "bias" and bundle.splits["train"].confound_column == "bias"
    assert registry.build("dataset", "files", _params()).load(tmp_path).confound_column is None  # no confound mapped


def test_rationale_from_several_columns(tmp_path):
    _write_jsonl(tmp_path / "nli")
    cols = {"text": "premise", "text_pair": "hypothesis", "label": "gold", "rationale": ["hl", "hh"]}
    bundle = registry.build("dataset", "files", _params(columns=cols)).load(tmp_path)
    assert bundle.splits["train"].rationale == [
        [0, 1, 1, 0] + [0, 1, 0],
        [1, 0, 0] + [0, 0, 0, 0],  # a missing part is zeros for its own side
        [0, 0, 0] + [0, 0, 1, 0],
    ]
    assert bundle.splits["dev"].rationale == [[1, 1, 0, 0, 0, 0]]


def test_rationale_length_is_checked(tmp_path):
    _write_jsonl(tmp_path / "nli")
    cols = {"text": "premise", "label": "gold", "rationale": "hl"}
    bundle = registry.build("dataset", "files", _params(columns=cols)).load(tmp_path)
    assert bundle.splits["train"].rationale == [[0, 1, 1, 0], [1, 0, 0], [0, 0, 0]]  # None -> all zeros
    cols = {"text": "premise", "text_pair": "hypothesis", "label": "gold", "rationale": "hl"}
    with pytest.raises(UserError) as err:
        registry.build("dataset", "files", _params(columns=cols)).load(tmp_path)
    msg = str(err.value)
    assert "train.jsonl" in msg and "'a1'" in msg and "4 entries" in msg and "7 words" in msg and "data.params.columns.rationale" in msg


def test_wrong_column_mapping_message(tmp_path):
    _write_jsonl(tmp_path / "nli")
    with pytest.raises(UserError) as err:
        registry.build("dataset", "files", _params(columns={"text": "premis", "label": "gold"})).load(tmp_path)
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "nli" / "train.jsonl") + ": column 'premis' not found")
    assert "data.params.columns.text" in msg and "did you mean 'premise'?" in msg
    assert "available columns: id, premise, hypothesis, gold" in msg
    with pytest.raises(UserError, match="data.params.meta_columns"):
        registry.build("dataset", "files", _params(meta_columns=["genr"])).load(tmp_path)


def test_csv_and_tsv_absolute_path(tmp_path):
    folder = tmp_path / "csvs"
    folder.mkdir()
    (folder / "train.csv").write_text('sentence,y\n"hello, world",1\nbye,0\n')
    (folder / "test.tsv").write_text("sentence\ty\nx y z\t1\n")
    params = {"path": str(folder), "splits": {"train": "train.csv", "test": "test.tsv"}, "columns": {"text": "sentence", "label": "y"}}
    bundle = registry.build("dataset", "files", params).load(tmp_path / "unused-root")
    assert bundle.splits["train"].text == ["hello, world", "bye"] and bundle.splits["train"].label == [1, 0]
    assert bundle.splits["train"].ids == ["train-0", "train-1"] and bundle.label_names == ["0", "1"]
    assert bundle.splits["test"].text == ["x y z"]


def test_missing_split_file_and_param_validation(tmp_path):
    _write_jsonl(tmp_path / "nli")
    with pytest.raises(UserError) as err:
        registry.build("dataset", "files", _params(splits={"test": "tst.jsonl"})).load(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "nli" / "tst.jsonl") in msg and "data.params.splits.test" in msg and "runtime.data_root" in msg
    with pytest.raises(ValueError, match="exactly one of path"):
        registry.build("dataset", "files", _params(hub="glue"))
    with pytest.raises(ValueError, match="did you mean 'confound'"):
        registry.build("dataset", "files", _params(columns={"text": "premise", "label": "gold", "confund": "bias"}))
    with pytest.raises(ValueError, match="label"):
        registry.build("dataset", "files", _params(columns={"text": "premise"}))


def test_hub_dataset(monkeypatch):
    import datasets

    calls = []
    features = datasets.Features(
        {"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"), "idx": datasets.Value("int32"),
         "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])}
    )

    def fake_load_dataset(path, name=None, *, revision=None, split=None, **kwargs):
        calls.append((path, name, revision, split))
        rows = [{"premise": f"p {split} {i}", "hypothesis": "h", "idx": i, "label": i % 3} for i in range(4)]
        return datasets.Dataset.from_list(rows, features=features)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    params = {
        "hub": "nyu-mll/glue", "config": "mnli", "revision": "abc",
        "splits": {"train": "train", "dev": "validation_matched"},
        "columns": {"text": "premise", "text_pair": "hypothesis", "label": "label"},
        "id_column": "idx",
    }
    bundle = registry.build("dataset", "files", params).load(Path("/nonexistent"))
    assert calls == [("nyu-mll/glue", "mnli", "abc", "train"), ("nyu-mll/glue", "mnli", "abc", "validation_matched")]
    assert bundle.label_names == ["entailment", "neutral", "contradiction"]  # from the ClassLabel feature
    assert bundle.splits["dev"].label == [0, 1, 2, 0] and bundle.splits["dev"].ids == ["0", "1", "2", "3"]
    assert bundle.files == []

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UserError) as err:
        registry.build("dataset", "files", params).load(Path("/nonexistent"))
    assert "'nyu-mll/glue'" in str(err.value) and "data.params.path" in str(err.value)


def test_esnli_highlights_end_to_end(shared_root):
    """The shared e-SNLI highlights through ``files``: the token mask covers the highlighted words."""
    from registry.data import encode_split
    from registry.models._loading import load_tokenizer, offline_model_dir

    params = {
        "path": "snli",
        "splits": {"train": "esnli_highlights.jsonl"},
        "columns": {"text": "premise", "text_pair": "hypothesis", "label": "label",
                    "rationale": ["premise_rationale", "hypothesis_rationale"]},
    }
    split = registry.build("dataset", "files", params).load(shared_root).splits["train"]
    assert len(split) == 999 and split.ids[0] == "esnli-hl-000"
    tok = load_tokenizer(offline_model_dir())
    enc = encode_split(split, tok, max_length=128)
    marked = enc.input_ids[0][enc.rationale[0] > 0]
    assert tok.convert_ids_to_tokens(marked.tolist()) == ["training", "his", "horse"]
    n_marked_words = sum(sum(r) for r in split.rationale)
    assert n_marked_words == 4246  # README: 4,246 of 20,793 tokens highlighted


def test_pair_dataset_missing_its_second_text_column(tmp_path):
    _write_jsonl(tmp_path / "nli")
    with pytest.raises(UserError) as err:
        registry.build("dataset", "files", _params(columns={"text": "premise", "text_pair": "hypotesis", "label": "gold"})).load(tmp_path)
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "nli" / "train.jsonl") + ": column 'hypotesis' not found (set by data.params.columns.text_pair)")
    assert "did you mean 'hypothesis'?" in msg


def test_label_outside_the_declared_names_gives_file_line_and_value(tmp_path):
    folder = _write_jsonl(tmp_path / "nli")
    with pytest.raises(UserError) as err:
        registry.build("dataset", "files", _params(label_names=["entailment", "neutral"])).load(tmp_path)
    bad = [i for i, r in enumerate(ROWS["train"]) if r["gold"] not in ("entailment", "neutral")][0]
    assert str(err.value).startswith(
        f"{folder / 'train.jsonl'}:{bad + 1}: value {ROWS['train'][bad]['gold']!r} of the column mapped by data.params.columns.label"
    )
