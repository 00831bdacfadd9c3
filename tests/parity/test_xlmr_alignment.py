"""Parity with the reference's XLM-R "▁" removal (tests/data/parity/xlmr_alignment).

Each case's words go through the project's own functions with the stand-in
XLM-R tokenizer stored beside the cases; the sub-word ids after "▁" removal,
the sub-word that carries each word's label and each word's realignment
position must be the reference's. Labels follow the cases' trick: word w's
label is w, so a label's value says whose it is.

Long sentences are cut differently on purpose: the reference cuts windows
of sub-words before deleting "▁" (a word across a boundary is labelled in
both windows), the project cuts between words after deleting it (every word
labelled once). For those cases the comparable facts are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainables.realignment.batches import encode_pair
from trainables.realignment.word_pairs import AlignedPair
from trainables.tasks.base import IGNORE_INDEX
from trainables.tasks.token_classification import (TaggedSentence, bare_metaspace_id, sentence_windows,
                                                   special_tokens)

CASES_DIR = Path(__file__).resolve().parents[1] / "data" / "parity" / "xlmr_alignment"
CASES = [json.loads(line) for line in (CASES_DIR / "cases.jsonl").read_text(encoding="utf-8").splitlines()]
# the reference's windows hold the whole sentence: one window, nothing truncated
WHOLE = [c for c in CASES if c["label_and_realignment_paths_agree"]]
CUT = [c for c in CASES if len(c["label_alignment"]["windows"]) > 1]


@pytest.fixture(scope="module")
def tokenizer():
    # The one faithful way to load it (parity README, section 4): a
    # from_pretrained round trip drops the NFKC normaliser.
    from tokenizers import Tokenizer
    from transformers import XLMRobertaTokenizerFast

    return XLMRobertaTokenizerFast(tokenizer_object=Tokenizer.from_file(str(CASES_DIR / "tokenizer.json")))


def label_trick(case: dict) -> tuple[TaggedSentence, dict[str, int]]:
    words = tuple(case["words"])
    return TaggedSentence(words, tuple(str(i) for i in range(len(words)))), {str(i): i for i in range(len(words))}


def test_case_counts_and_tokenizer():
    assert len(CASES) == 238 and len(WHOLE) == 226
    assert sum(c["kind"] == "overflow" for c in CASES) == 10 and len(CUT) == 11


def test_the_bare_piece_is_found(tokenizer):
    assert bare_metaspace_id(tokenizer) == 4 == tokenizer.convert_tokens_to_ids("▁")
    assert special_tokens(tokenizer) == ([0], [2])


@pytest.mark.parametrize("case", WHOLE, ids=lambda c: f"{c['id']}-{c['kind']}-{c['lang']}")
def test_label_positions_replay(tokenizer, case):
    sentence, label_to_id = label_trick(case)
    [expected] = case["label_alignment"]["windows"]
    [window] = sentence_windows(tokenizer, [sentence], label_to_id, case["label_alignment"]["max_length"])
    assert window.input_ids == expected["input_ids"]
    assert window.labels == expected["labels"]
    assert window.first_subwords == {int(w): p for w, p in expected["label_position_per_word"].items()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['id']}-{c['kind']}-{c['lang']}")
def test_realignment_positions_replay(tokenizer, case):
    """Word positions, sub-word ids and truncation (at 96, counted before "▁" removal) as the reference."""
    expected = case["realignment_positions"]
    words = tuple(case["words"])
    # every word linked to itself: the links must follow the words that keep a position
    pair = AlignedPair("xx", words, words, tuple((i, i) for i in range(len(words))))
    encoded = encode_pair(tokenizer, pair, expected["max_length"])
    ranges = expected["word_ranges"]
    assert encoded.source_ids == expected["input_ids"] == encoded.target_ids
    assert encoded.source_first == [r[0] for r in ranges if r is not None]
    assert all(r is None or r[1] == r[0] + 1 for r in ranges)
    kept = sum(r is not None for r in ranges)
    assert encoded.links == [(k, k) for k in range(kept)]


def reference_first_labels(case: dict) -> dict[int, int]:
    """Word -> the token id of its first labelled sub-word over the reference's windows."""
    first: dict[int, int] = {}
    for window in case["label_alignment"]["windows"]:
        for token, label in zip(window["input_ids"], window["labels"]):
            if label != IGNORE_INDEX:
                first.setdefault(label, token)
    return first


@pytest.mark.parametrize("case", CUT, ids=lambda c: f"{c['id']}-{c['kind']}-{c['lang']}")
def test_long_sentences_keep_word_windows(tokenizer, case):
    max_length = case["label_alignment"]["max_length"]
    sentence, label_to_id = label_trick(case)
    windows = sentence_windows(tokenizer, [sentence], label_to_id, max_length)
    assert all(len(w.input_ids) <= max_length for w in windows)
    # windows are cut after "▁" removal: a sentence the reference cuts in two
    # may fit in one (case 157: 128 sub-words with "▁", 88 without)
    assert (len(windows) > 1) == (case["kind"] == "overflow")
    labelled = [(label, w.input_ids[p]) for w in windows
                for p, label in enumerate(w.labels) if label != IGNORE_INDEX]
    words = [label for label, _ in labelled]
    assert words == sorted(set(words)), "every word labelled exactly once, in order"
    for window in windows:   # label trick: word w's label is w
        assert all(window.labels[p] == w for w, p in window.first_subwords.items())
    # the same words labelled, each on the same sub-word as the reference's first label
    assert dict(labelled) == reference_first_labels(case)
    # and nothing lost or added: the windows hold the reference's ids after "▁" removal, in order
    reference_ids = [i for w in case["label_alignment"]["windows"] for i in w["input_ids"][1:-1]]
    assert [i for w in windows for i in w.input_ids[1:-1]] == reference_ids


def test_reference_labels_words_cut_by_a_window_twice():
    """The difference documented in the README: every overflow case has a word labelled in two windows."""
    for case in (c for c in CUT if c["kind"] == "overflow"):
        counts: dict[int, int] = {}
        for window in case["label_alignment"]["windows"]:
            for label in window["labels"]:
                if label != IGNORE_INDEX:
                    counts[label] = counts.get(label, 0) + 1
        assert max(counts.values()) == 2


def test_words_of_nothing_but_the_bare_piece_have_no_label(tokenizer):
    """Parity README fact (e): "▁" and "▁▁" as words lose their label; the reference's stats agree."""
    stats = json.loads((CASES_DIR / "_stats.json").read_text(encoding="utf-8"))
    assert stats["unlabelled_(case,word)"] == [[230, 1], [231, 1]]
    for case_id in (230, 231):
        sentence, label_to_id = label_trick(CASES[case_id])
        [window] = sentence_windows(tokenizer, [sentence], label_to_id, 128)
        assert set(window.first_subwords) == {0, 2}
