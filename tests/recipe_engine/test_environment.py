import hashlib
import platform
import re

import pytest

from recipe_engine.environment import data_hashes, environment_info, file_sha256
from recipe_engine.errors import UserError


def test_environment_info_fields():
    info = environment_info("cpu", world_size=2)
    assert info["device"] == "cpu" and info["world_size"] == 2
    assert info["versions"]["python"] == platform.python_version()
    assert set(info["versions"]) == {"python", "torch", "transformers", "datasets", "pydantic", "recipe-engine"}
    assert info["versions"]["torch"] and info["versions"]["recipe-engine"]
    assert info["git_sha"] is None or re.fullmatch(r"[0-9a-f]{40}", info["git_sha"])
    assert (info["git_dirty"] is None) == (info["git_sha"] is None)


def test_hashes(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"abc")
    b.write_bytes(b"x" * (3 << 20))
    assert file_sha256(a) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(b) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()
    hashes = data_hashes([str(b), a, str(a)])
    assert list(hashes) == [str(a), str(b)]
    with pytest.raises(UserError, match="missing.txt is missing"):
        file_sha256(tmp_path / "missing.txt")
