"""Word pairs from a MUSE dictionary and from pharaoh files; their error messages."""

from __future__ import annotations

import pytest

from trainables.bundled import bundled_path
from trainables.errors import DataError
from trainables.realignment.word_pairs import (
    dictionary_links, load_muse_dictionary, one_to_one, parse_pharaoh_line, pharaoh_pairs, read_pharaoh,
)

DICTIONARY = {"cat": frozenset({"chat", "chatte"}), "the": frozenset({"le", "la"}),
              "dog": frozenset({"chien"}), "eats": frozenset({"mange"}), "big": frozenset({"grand"})}


def test_dictionary_keeps_words_with_exactly_one_translation_occurring_once():
    source = ["the", "cat", "eats", "the", "dog"]
    target = ["le", "chat", "mange", "le", "chien"]
    # "the" occurs twice in English and "le" twice in French: dropped.
    assert dictionary_links(source, target, DICTIONARY) == [(1, 1), (2, 2), (4, 4)]


def test_dictionary_drops_a_word_whose_two_translations_both_occur():
    # "cat" -> both "chat" and "chatte" present: ambiguous, dropped.
    assert dictionary_links(["cat", "dog"], ["chat", "chatte", "chien"], DICTIONARY) == [(1, 2)]


def test_dictionary_drops_two_english_words_claiming_one_target_word():
    dictionary = {"big": frozenset({"grand"}), "large": frozenset({"grand"})}
    assert dictionary_links(["big", "large"], ["grand"], dictionary) == []


def test_dictionary_falls_back_to_lowercase():
    assert dictionary_links(["The", "dog"], ["un", "chien"], DICTIONARY) == [(1, 1)]


def test_bundled_muse_dictionary_loads():
    dictionary = load_muse_dictionary(bundled_path("dictionaries/muse/en-fr.first3000.txt"))
    assert len(dictionary) > 1000
    assert all(isinstance(v, frozenset) and v for v in dictionary.values())


def test_malformed_dictionary_line_names_file_and_line(tmp_path):
    path = tmp_path / "en-fr.txt"
    path.write_text("cat\tchat\ndog\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: expected"):
        load_muse_dictionary(path)


def test_one_to_one_drops_words_in_several_links():
    assert one_to_one([(0, 0), (1, 1), (1, 2), (3, 2), (4, 4)]) == [(0, 0), (4, 4)]


def test_pharaoh_line_sure_and_possible():
    assert parse_pharaoh_line("0-0 1-2 2p1") == [(0, 0), (1, 2)]
    assert parse_pharaoh_line("0-0 2p1", include_possible=True) == [(0, 0), (2, 1)]


def test_pharaoh_file_errors(tmp_path):
    path = tmp_path / "align.txt"
    path.write_text("0-0 1-1\n0-x\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: bad alignment link '0-x'"):
        read_pharaoh(path)


def test_pharaoh_pairs_keep_one_to_one_links_and_check_bounds(tmp_path):
    tokenized = [(["a", "b"], ["x", "y"]), (["c"], ["z"])]
    pairs = pharaoh_pairs("fr", tokenized, [[(0, 0), (0, 1), (1, 1)], [(0, 0)]])
    # the first pair's links all share a word: none is one-to-one, so the pair is left out
    assert [(p.source_words, p.links) for p in pairs] == [(("c",), ((0, 0),))]
    with pytest.raises(DataError, match="outside a sentence pair"):
        pharaoh_pairs("fr", tokenized, [[(0, 5)], []], path="a.txt")
    with pytest.raises(DataError, match="1 alignment lines for 2 sentence pairs"):
        pharaoh_pairs("fr", tokenized, [[(0, 0)]], path="a.txt")
