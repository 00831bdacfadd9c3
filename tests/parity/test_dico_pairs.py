"""Dictionary word pairs against the reference's own aligner, line by line.

``tests/data/parity/dico_pairs/<xxx>.jsonl`` (see its README, section 1)
holds, for the first 300 pairs of each bundled Tatoeba slice, the words
the reference's pre-tokenisation wrote and the links its dictionary
aligner and pharaoh loader kept, with the bundled MUSE first-3000
dictionary. Each case is replayed through the project's own path: the
line-aligned files read as a trial reads them, the default pre-tokenizer,
and the ``dico`` aligner with its default settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainables.bundled import bundled_path
from trainables.realignment.aligners import AlignmentRequest, alignment_links
from trainables.realignment.corpus import realignment_pairs, tokenized_pairs
from trainables.realignment.parallel_data import read_line_aligned

CASES = Path(__file__).resolve().parents[1] / "data" / "parity" / "dico_pairs"
LANGUAGES = {"fra": "fr", "deu": "de", "rus": "ru", "cmn": "zh", "fin": "fi", "tur": "tr"}
PAIRS = 300
# links and pairs with at least one link, from the parity README
TOTALS = {"fra": (367, 200), "deu": (462, 239), "rus": (299, 203), "cmn": (176, 143), "fin": (233, 153),
          "tur": (172, 138)}


def tatoeba(code: str) -> dict[str, str]:
    return {"source": str(bundled_path(f"parallel/tatoeba/tatoeba.{code}-eng.eng.first500")),
            "target": str(bundled_path(f"parallel/tatoeba/tatoeba.{code}-eng.{code}.first500"))}


def dictionary(language: str) -> Path:
    return bundled_path(f"dictionaries/muse/en-{language}.first3000.txt")


def cases(code: str) -> list[dict]:
    with open(CASES / f"{code}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_dictionary_pairs_match_the_reference_line_by_line(code):
    language = LANGUAGES[code]
    files = tatoeba(code)
    tokenized = tokenized_pairs(language, read_line_aligned(files["source"], files["target"], PAIRS))
    links = alignment_links("dico", AlignmentRequest(language, tokenized, dictionary_path=dictionary(language)))
    expected = cases(code)
    assert len(expected) == len(tokenized) == PAIRS
    mismatched = [case["line"] for case, (src, tgt), pair_links in zip(expected, tokenized, links)
                  if (case["en_tokens"], case["xx_tokens"], case["links"])
                  != (src, tgt, [list(link) for link in pair_links])]
    assert mismatched == [], f"{len(mismatched)} of {PAIRS} lines differ, first: {mismatched[:5]}"
    assert (sum(map(len, links)), sum(1 for pair in links if pair)) == TOTALS[code]


@pytest.mark.parametrize("code", ["fra", "cmn"])
def test_a_trials_realignment_corpus_holds_the_reference_pairs(code, tmp_path, monkeypatch):
    """The trial's path (``realignment_pairs``, through the alignment cache) keeps exactly
    the pairs the reference loader keeps, and records the pre-tokenizer."""
    monkeypatch.setenv("ALIGNFREEZE_CACHE", str(tmp_path))
    language = LANGUAGES[code]
    report: dict = {}
    pairs = realignment_pairs([language], {language: tatoeba(code)}, "dico",
                              dictionaries={language: str(dictionary(language))}, max_pairs=PAIRS,
                              report=report)[language]
    kept = [case for case in cases(code) if case["kept_by_loader"]]
    assert [(list(p.source_words), list(p.target_words), [list(link) for link in p.links]) for p in pairs] == [
        (case["en_tokens"], case["xx_tokens"], case["links"]) for case in kept]
    assert report[language]["pretokenizer"] == "reference"
    assert report[language]["lines"] == PAIRS and report[language]["pairs"] == TOTALS[code][1]
