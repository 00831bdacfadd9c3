"""Word pairs from a MUSE dictionary (the reference's rule) and from pharaoh files; their errors."""

from __future__ import annotations

import pytest

from trainables.bundled import bundled_path
from trainables.errors import DataError
from trainables.realignment.word_pairs import (
    bilingual_dictionary, dictionary_links, load_muse_dictionary, loaded_links, one_to_one,
    parse_pharaoh_line, pharaoh_line, pharaoh_links, pharaoh_pairs, read_pharaoh,
)

DICTIONARY = bilingual_dictionary([
    ("cat", "chat"), ("cat", "chatte"), ("the", "le"), ("the", "la"), ("dog", "chien"),
    ("eats", "mange"), ("big", "grand"),
])


def test_dictionary_keeps_words_with_exactly_one_translation_occurring_once():
    source = ["the", "cat", "eats", "the", "dog"]
    target = ["le", "chat", "mange", "le", "chien"]
    # "the" occurs twice in English and "le" twice in French: dropped.
    assert dictionary_links(source, target, DICTIONARY) == [(1, 1), (2, 2), (4, 4)]


def test_dictionary_drops_a_word_whose_two_translations_both_occur():
    # "cat" -> both "chat" and "chatte" present: ambiguous, dropped.
    assert dictionary_links(["cat", "dog"], ["chat", "chatte", "chien"], DICTIONARY) == [(1, 2)]


def test_dictionary_drops_two_english_words_claiming_one_target_word():
    dictionary = bilingual_dictionary([("big", "grand"), ("large", "grand")])
    assert dictionary_links(["big", "large"], ["grand"], dictionary) == []


def test_reverse_check_counts_english_words_that_are_not_linked_themselves():
    # "large" is ambiguous (grand and gros both occur) and gets no link, but
    # it is still a translation of "grand" present in the sentence: the
    # reference then refuses big-grand too (one-to-one filtering would keep it).
    dictionary = bilingual_dictionary([("big", "grand"), ("large", "grand"), ("large", "gros")])
    assert dictionary_links(["big", "large"], ["grand", "gros"], dictionary) == []
    assert dictionary_links(["big", "dog"], ["grand", "gros"], dictionary) == [(0, 0)]


def test_dictionary_matching_is_case_sensitive_unless_asked():
    assert dictionary_links(["The", "dog"], ["un", "chien"], DICTIONARY) == [(1, 1)]
    assert dictionary_links(["The", "cat"], ["le", "chien"], DICTIONARY) == []
    assert dictionary_links(["The", "cat"], ["le", "chien"], DICTIONARY, lowercase_fallback=True) == [(0, 0)]


def test_identical_entries_are_dropped_and_entries_read_both_ways():
    dictionary = bilingual_dictionary([("taxi", "taxi"), ("cat", "chat")])
    assert "taxi" not in dictionary.forward
    assert dictionary_links(["taxi"], ["taxi"], dictionary) == []
    # the reference read en-xx.txt and xx-en.txt, both the en-xx file: "chat" looks up "cat"
    assert dictionary_links(["chat"], ["cat"], dictionary) == [(0, 0)]
    one_way = bilingual_dictionary([("cat", "chat")], symmetric=False)
    assert dictionary_links(["chat"], ["cat"], one_way) == []
    assert dictionary_links(["cat"], ["chat"], one_way) == [(0, 0)]


def test_bundled_muse_dictionary_loads():
    dictionary = load_muse_dictionary(bundled_path("dictionaries/muse/en-fr.first3000.txt"))
    assert dictionary.forward["the"] == {"le", "les", "la"}
    assert dictionary.backward["le"] == {"the"}
    assert dictionary.forward["le"] == {"the"}      # read both ways, as the reference did
    # 398 of the 3,000 lines map a word to itself: none survives
    assert all(word not in translations for word, translations in dictionary.forward.items())


def test_malformed_dictionary_line_names_file_and_line(tmp_path):
    path = tmp_path / "en-fr.txt"
    path.write_text("cat\tchat\ndog\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: expected"):
        load_muse_dictionary(path)
    path.write_text("cat chat chatte\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:1: expected"):
        load_muse_dictionary(path)


def test_multi_word_entries_are_skipped(tmp_path):
    path = tmp_path / "en-fr.txt"
    path.write_text("ice cream\tglace\ncat chat\n", encoding="utf-8")
    dictionary = load_muse_dictionary(path)
    assert set(dictionary.forward) == {"cat", "chat"}


def test_one_to_one_drops_words_in_several_links():
    assert one_to_one([(0, 0), (1, 1), (1, 2), (3, 2), (4, 4)]) == [(0, 0), (4, 4)]


def test_loaded_links_as_the_reference_loader():
    words = ["Tom", "sees", "it", "."]
    target = ["Tom", "voit", "ça", "."]
    # identical strings dropped (Tom-Tom, .-.); a repeated link counts twice; line order kept
    assert loaded_links([(2, 2), (0, 0), (1, 1), (3, 3)], words, target) == [(2, 2), (1, 1)]
    assert loaded_links([(1, 1), (1, 1), (2, 2)], words, target) == [(2, 2)]


def test_pharaoh_line_sure_and_possible():
    assert parse_pharaoh_line("0-0 1-2 2p1") == [(0, 0), (1, 2)]
    assert parse_pharaoh_line("0-0 2p1", include_possible=True) == [(0, 0), (2, 1)]
    assert parse_pharaoh_line(pharaoh_line([(0, 3), (2, 1)])) == [(0, 3), (2, 1)]
    assert pharaoh_line([]) == ""


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
    assert pharaoh_links(tokenized, [[(0, 0), (0, 1), (1, 1)], [(0, 0)]]) == [[], [(0, 0)]]
    with pytest.raises(DataError, match="a.txt:1: link 0-5 outside a sentence pair"):
        pharaoh_pairs("fr", tokenized, [[(0, 5)], []], path="a.txt")
    with pytest.raises(DataError, match="1 alignment lines for 2 sentence pairs"):
        pharaoh_pairs("fr", tokenized, [[(0, 0)]], path="a.txt")
