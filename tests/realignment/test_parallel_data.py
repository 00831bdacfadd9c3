"""Parallel sentences from local files; OPUS-100 failing clearly offline."""

from __future__ import annotations

import time

import pytest

from trainables.bundled import bundled_path
from trainables.errors import DataError
from trainables.realignment.parallel_data import load_parallel, read_line_aligned, read_tsv


def test_line_aligned_bundled_tatoeba():
    pairs = read_line_aligned(bundled_path("parallel/tatoeba/tatoeba.fra-eng.eng.first500"),
                              bundled_path("parallel/tatoeba/tatoeba.fra-eng.fra.first500"))
    assert len(pairs) == 500
    assert all(isinstance(e, str) and isinstance(f, str) for e, f in pairs)


def test_mismatched_parallel_files(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "a.fr").write_text("un\ndeux\n", encoding="utf-8")
    with pytest.raises(DataError, match="differ in length: 3 lines vs 2"):
        read_line_aligned(tmp_path / "a.en", tmp_path / "a.fr")


def test_tsv_and_its_errors(tmp_path):
    path = tmp_path / "en-de.tsv"
    path.write_text("hello\thallo\n\nthe dog\tder Hund\n", encoding="utf-8")
    assert read_tsv(path) == [("hello", "hallo"), ("the dog", "der Hund")]
    path.write_text("hello\thallo\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: expected 'english<TAB>translation', found 1 fields"):
        read_tsv(path)


def test_dispatch_and_limit(tmp_path):
    path = tmp_path / "en-de.tsv"
    path.write_text("a\tb\nc\td\ne\tf\n", encoding="utf-8")
    assert load_parallel("de", str(path), limit=2) == [("a", "b"), ("c", "d")]


def test_hub_source_fails_fast_and_clearly_offline():
    started = time.perf_counter()
    with pytest.raises(DataError, match="cannot load Hub dataset Helsinki-NLP/opus-100 \\(config en-fr\\)"):
        load_parallel("fr", "hub", limit=10)
    assert time.perf_counter() - started < 20
