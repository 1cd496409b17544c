"""Bad data files get one clear message naming the file (and line) and the fix."""
import gzip
import json

import pytest

from registry.datasets._checks import check_text_file, check_unique_ids
from registry.errors import UserError


def test_non_utf8_bytes_name_the_line_and_column(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(UserError, match=r"train.jsonl:2: not UTF-8 text \(byte 0xe9 at column 14\); fix: re-encode"):
        check_text_file(path, "train")


def test_gzipped_files_are_decoded_too(tmp_path):
    path = tmp_path / "dev.jsonl.gz"
    path.write_bytes(gzip.compress(b'\n\xff\n'))
    with pytest.raises(UserError, match=r"dev.jsonl.gz:2: not UTF-8 text \(byte 0xff at column 1\)"):
        check_text_file(path, "dev")


def test_an_empty_file_is_named_with_its_split(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text("\n  \n")
    with pytest.raises(UserError, match=r"dev.jsonl: the file of split 'dev' is empty; fix: point data.params.splits.dev"):
        check_text_file(path, "dev")


def test_duplicate_ids_name_the_id_and_its_rows():
    check_unique_ids(["a", "b", "c"], "train", "f.jsonl")
    with pytest.raises(UserError, match=r"f.jsonl: split 'train': id 'b' is used by 2 rows \(rows 1 and 3; 1 duplicated"):
        check_unique_ids(["a", "b", "c", "b"], "train", "f.jsonl")


def test_the_files_dataset_runs_the_checks(tmp_path):
    from registry.datasets.files import Files

    rows = [{"id": "x", "text": "a b", "label": 0}, {"id": "x", "text": "c d", "label": 1}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = Files(Files.Params(path=str(tmp_path), splits={"train": "train.jsonl"}, columns={"text": "text", "label": "label"}))
    with pytest.raises(UserError, match="id 'x' is used by 2 rows"):
        ds.load(tmp_path)
