import pytest

EXPLANATIONS = {
    "round": 0, "seed": 1, "label_names": ["entailment", "neutral", "contradiction"],
    "anchors": [
        {"id": "dev-1", "text": "The judge saw the doctor.", "text_pair": "The doctor saw the judge.", "label": "contradiction",
         "predicted": "entailment",
         "candidates": [{"id": "tr-4", "text": "A cat sat.", "text_pair": "A cat is sitting.", "label": "entailment", "influence": -0.5},
                        {"id": "tr-9", "text": "Dogs run <b>fast</b>.", "text_pair": "Dogs are slow.", "label": "contradiction", "influence": -0.25}]},
        {"id": "dev-2", "text": "It rains.", "text_pair": "It is wet.", "label": "entailment", "predicted": "neutral",
         "candidates": [{"id": "tr-1", "text": "Snow falls.", "text_pair": "It is cold.", "label": "neutral", "influence": -0.125}]},
    ],
}


@pytest.fixture
def explanations():
    import copy
    return copy.deepcopy(EXPLANATIONS)
