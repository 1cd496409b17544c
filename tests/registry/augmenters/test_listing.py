"""``recipe-engine ls augmenters`` and ``explain synonym_replacement`` show the built-in augmenter."""
from recipe_engine.cli import main


def test_ls_augmenters_lists_synonym_replacement(capsys):
    assert main(["ls", "augmenters"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("augmenters (1)")
    row = next(line for line in out.splitlines() if line.startswith("synonym_replacement "))
    assert row.split()[-1] == "built-in" and "label kept" in row


def test_explain_synonym_replacement(capsys):
    assert main(["explain", "synonym_replacement"]) == 0
    out = capsys.readouterr().out
    assert "synonym_replacement  (augmenter, built-in: registry.augmenters.synonym_replacement)" in out
    assert "Wei & Zou 2019 (EDA)" in out and "Zylberajch et al. 2021 (HILDIF)" in out
    assert 'copies_per_score: ' in out and '(default "paper")' in out
    assert "words: int (default 1)" in out and 'fields: ' in out and '(default "both")' in out
