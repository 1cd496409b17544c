"""A recipe-engine plugin: the confidence-penalty objective (see ``objective.py``)."""
