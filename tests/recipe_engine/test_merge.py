"""Merging a child tree onto its parent: identities, deletions, name changes, provenance."""
from __future__ import annotations

from recipe_engine.errors import Origin
from recipe_engine.merge import Merger, identity, plain_identity
from recipe_engine.yaml_positions import flatten, parse_yaml, to_plain


def tree(text: str, filename: str, source: str):
    node, problems = parse_yaml(text, filename, source)
    assert problems == []
    return node


def merged(parent: str, child: str):
    merger = Merger()
    result = merger.merge(tree(parent, "p.yaml", "base"), tree(child, "c.yaml", "file"))
    return result, merger


def test_mappings_deep_merge_and_keep_leaf_origins():
    result, merger = merged("a: {x: 1, y: 2}\nb: 3\n", "a: {y: 20, z: 30}\nc: 4\n")
    data, origins = flatten(result)
    assert merger.errors == [] and data == {"a": {"x": 1, "y": 20, "z": 30}, "b": 3, "c": 4}
    assert origins[("a", "x")] == Origin("p.yaml", 1, 5, "base")
    assert origins[("a", "y")] == Origin("c.yaml", 1, 5, "file")
    assert origins[("a",)] == Origin("c.yaml", 1, 1, "file")
    assert origins[("b",)] == Origin("p.yaml", 2, 1, "base")


def test_lists_with_ids_merge_in_parent_position_and_append_new():
    parent = "l: [{id: a, v: 1, w: 1}, {id: b, v: 2}, {name: c, v: 3}]\n"
    child = "l: [{name: c, v: 30}, {id: new, v: 9}, {id: a, v: 10}]\n"
    result, merger = merged(parent, child)
    data, origins = flatten(result)
    assert merger.errors == []
    assert data["l"] == [{"id": "a", "v": 10, "w": 1}, {"id": "b", "v": 2}, {"name": "c", "v": 30}, {"id": "new", "v": 9}]
    assert origins[("l", 0, "w")].source == "base" and origins[("l", 0, "v")].source == "file"
    assert origins[("l", 1)].source == "base" and origins[("l", 3)].source == "file"


def test_lists_without_unique_identities_are_replaced():
    for parent, child in [("l: [1, 2, 3]\n", "l: [4]\n"),
                          ("l: [{id: a}, {id: a}]\n", "l: [{id: b}]\n"),
                          ("l: [{id: a}, {v: 1}]\n", "l: [{id: a, v: 2}]\n"),
                          ("l: [{id: a}]\n", "l: [{id: b}, {x: 1}]\n")]:
        result, merger = merged(parent, child)
        assert merger.errors == [] and to_plain(result)["l"] == to_plain(tree(child, "c", "file"))["l"]


def test_empty_child_list_clears():
    result, _ = merged("l: [{id: a}]\n", "l: []\n")
    assert to_plain(result) == {"l": []}


def test_identity_prefers_id_and_ignores_non_scalars():
    assert plain_identity({"id": 3, "name": "n"}) == "3"
    assert plain_identity({"name": "n"}) == "n"
    assert plain_identity({"id": [1], "name": "n"}) is None
    assert plain_identity({"id": True}) is None and plain_identity(["x"]) is None
    assert identity(tree("{id: a}", "f", "file")) == "a"


def test_tilde_key_deletes_and_tilde_plus_key_replaces():
    result, merger = merged("a: {x: 1, y: 2}\nb: {p: 1, q: 2}\nc: 1\n", "~c: null\n~b:\nb: {r: 3}\na: {~x: }\n")
    assert merger.errors == []
    assert to_plain(result) == {"a": {"y": 2}, "b": {"r": 3}}


def test_tilde_key_with_nothing_to_delete_suggests_a_sibling():
    _, merger = merged("optimizer: {params: {lr: 1, weight_decay: 0}}\n", "optimizer:\n  params:\n    ~weight_decy: null\n")
    assert [e.render() for e in merger.errors] == [
        "c.yaml:3:5: optimizer.params.~weight_decy: '~weight_decy' deletes nothing: there is no 'weight_decy' here; "
        "remove '~weight_decy' or correct the key (did you mean 'weight_decay'?)"]


def test_delete_list_item_by_id():
    result, merger = merged("l: [{id: a}, {id: b}, {name: c}]\n", "l: [{~id: b}, {~name: c}]\n")
    assert merger.errors == [] and to_plain(result) == {"l": [{"id": "a"}]}


def test_delete_then_readd_item_replaces_it_at_the_end():
    result, merger = merged("l: [{id: a, v: 1, w: 1}, {id: b}]\n", "l: [{~id: a}, {id: a, v: 2}]\n")
    assert merger.errors == [] and to_plain(result) == {"l": [{"id": "b"}, {"id": "a", "v": 2}]}


def test_delete_missing_item_suggests_an_id():
    _, merger = merged("phases: [{id: label}, {id: influence}]\n", "phases:\n  - ~id: lable\n")
    assert [e.render() for e in merger.errors] == [
        "c.yaml:2:5: phases: '~id: lable' deletes nothing: no item 'lable' here; remove it or correct the id "
        "(did you mean 'label'?)"]


def test_delete_item_from_list_without_ids_is_an_error():
    _, merger = merged("l: [1, 2]\n", "l: [{~id: a}]\n")
    assert [e.message for e in merger.errors] == [
        "'~id: a' deletes nothing: the items of this list have no unique 'id' or 'name' to find it by; "
        "write the whole list instead"]


def test_stray_deletions_without_parent_are_errors():
    merger = Merger()
    result = merger.merge(None, tree("a: {~b: 1, c: 2}\nl: [{~id: x}, {id: y}]\n", "c.yaml", "file"))
    assert to_plain(result) == {"a": {"c": 2}, "l": [{"id": "y"}]}
    assert [e.path for e in merger.errors] == ["a.~b", "l"]


def test_name_change_drops_params_with_notice_but_not_at_root():
    result, merger = merged("name: p\nparams: {k: 1}\nmodel: {name: a, params: {k: 1}, extra: 2}\n",
                            "name: c\nmodel: {name: b}\n")
    assert to_plain(result) == {"name": "c", "params": {"k": 1}, "model": {"name": "b", "extra": 2}}
    assert merger.notices == ["model: name changed a->b; parent params dropped"]
    result, merger = merged("model: {name: a, params: {k: 1}}\n", "model: {name: a, params: {j: 2}}\n")
    assert to_plain(result) == {"model": {"name": "a", "params": {"k": 1, "j": 2}}} and merger.notices == []


def test_child_scalar_replaces_mapping_and_vice_versa():
    result, merger = merged("a: {x: 1}\nb: 1\n", "a: 2\nb: {y: 3}\n")
    assert merger.errors == [] and to_plain(result) == {"a": 2, "b": {"y": 3}}


def test_parent_tree_is_not_mutated():
    parent = tree("a: {x: 1}\nl: [{id: a, v: 1}]\n", "p.yaml", "base")
    before = to_plain(parent)
    Merger().merge(parent, tree("a: {~x: null, y: 2}\nl: [{~id: a}]\n", "c.yaml", "file"))
    assert to_plain(parent) == before
