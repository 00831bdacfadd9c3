"""Realignment corpora read lazily: shuffle buffer, interleaving, restarts, resume, Hub streaming, caches."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from trainables.bundled import bundled_path
from trainables.errors import DataError, SpecError
from trainables.realignment import eflomal_aligner
from trainables.realignment.corpus import language_corpora, realignment_pairs
from trainables.realignment.parallel_data import ParallelCorpus
from trainables.realignment.realigner import RealignmentStream, RealignSettings
from trainables.realignment.stream import buffer_shuffled, interleave
from trainables.realignment.word_pairs import AlignedPair

CODES = {"fr": "fra", "de": "deu"}


def tatoeba(language: str) -> dict[str, str]:
    code = CODES[language]
    return {"source": str(bundled_path(f"parallel/tatoeba/tatoeba.{code}-eng.eng.first500")),
            "target": str(bundled_path(f"parallel/tatoeba/tatoeba.{code}-eng.{code}.first500"))}


def dictionary(language: str) -> str:
    return str(bundled_path(f"dictionaries/muse/en-{language}.first3000.txt"))


def repeated_files(tmp_path: Path, language: str, copies: int) -> dict[str, str]:
    """The bundled Tatoeba slice of ``language`` written ``copies`` times over (a larger corpus)."""
    files = {}
    for side, path in tatoeba(language).items():
        text = Path(path).read_text(encoding="utf-8")
        target = tmp_path / f"{language}.{side}"
        target.write_text(text * copies, encoding="utf-8")
        files[side] = str(target)
    return files


def pair(language: str, index: int) -> AlignedPair:
    return AlignedPair(language, ("the", f"w{index}"), ("x", f"{language}{index}"), ((1, 1),))


def first_words(pairs) -> list[tuple[str, str]]:
    return [(p.language, p.source_words[1]) for p in pairs]


def batches_equal(first, second) -> bool:
    return (torch.equal(first.input_ids, second.input_ids) and torch.equal(first.links, second.links)
            and torch.equal(first.word_positions, second.word_positions))


# ------------------------------------------------------------- the pieces

def test_buffer_shuffle_is_a_seeded_permutation_within_its_buffer():
    items = list(range(1000))
    shuffled = list(buffer_shuffled(items, 50, random.Random(1)))
    assert sorted(shuffled) == items
    assert shuffled == list(buffer_shuffled(items, 50, random.Random(1)))
    assert shuffled != list(buffer_shuffled(items, 50, random.Random(2)))
    # an item comes out at most buffer-size places before its turn: a bounded look-ahead
    assert all(position >= item - 50 for position, item in enumerate(shuffled))
    # a corpus smaller than the buffer is shuffled whole
    assert sorted(buffer_shuffled(range(10), 50, random.Random(1))) == list(range(10))


def test_shortest_interleaving_ends_the_pass_with_the_first_language_used_up():
    """As ``datasets.interleave_datasets`` with stopping_strategy first_exhausted: round-robin,
    and the pass ends right after the shortest language's last pair."""
    streams = {"fr": [pair("fr", i) for i in range(3)], "de": [pair("de", i) for i in range(2)],
               "ru": [pair("ru", i) for i in range(5)]}
    assert first_words(interleave(streams, "shortest")) == [
        ("fr", "w0"), ("de", "w0"), ("ru", "w0"), ("fr", "w1"), ("de", "w1")]
    assert len(list(interleave(streams, "all_pairs"))) == 10


def test_the_default_stream_replays_its_first_pass_and_all_pairs_reshuffles(mbert_tokenizer):
    corpora = {"fr": [pair("fr", i) for i in range(6)], "de": [pair("de", i) for i in range(3)]}

    def drawn(interleaving: str) -> list[tuple[int, ...]]:
        stream = RealignmentStream(corpora, mbert_tokenizer, RealignSettings(batch_size=1, interleaving=interleaving),
                                   seed=4)
        return [tuple(stream.next_batch().input_ids[1].tolist()) for _ in range(18)]

    shortest = drawn("shortest")
    # a pass: 3 French and 3 German pairs (German runs out), then both restart in the same order
    assert shortest[0:6] == shortest[6:12] == shortest[12:18]
    assert len(set(shortest[0:6])) == 6
    everything = drawn("all_pairs")    # a pass: every pair of every language, reshuffled at each pass
    assert len(set(everything[0:9])) == 9 and set(everything[0:9]) == set(everything[9:18])
    assert everything[0:9] != everything[9:18]


def test_a_stream_reads_only_its_buffers_before_the_first_batch(mbert_tokenizer):
    """Time to the first step and memory do not grow with the corpus: a million-pair corpus
    is read up to its shuffle buffer (and the pairs the first batch takes), no further."""
    read = {"fr": 0}

    class Counting:
        info: dict = {}

        def __iter__(self):
            for index in range(1_000_000):
                read["fr"] += 1
                yield pair("fr", index)

        def aligned(self, item):
            return item

    stream = RealignmentStream({"fr": Counting()}, mbert_tokenizer, RealignSettings(batch_size=16), seed=0,
                               shuffle_buffer=100)
    stream.next_batch()
    assert read["fr"] <= 100 + 17
    assert stream.report["fr"]["lines"] <= 17 and not stream.report["fr"]["complete"]


# -------------------------------------------------- files, determinism, resume

@pytest.mark.parametrize("interleaving", ["shortest", "all_pairs"])
def test_same_seed_same_batches_and_skip_lands_on_the_same_batch(tmp_path, mbert_tokenizer, interleaving):
    """Two languages read from line-aligned files through a small buffer, over several passes."""
    parallel = {"fr": repeated_files(tmp_path, "fr", 1), "de": tatoeba("de")}
    dictionaries = {language: dictionary(language) for language in parallel}
    settings = RealignSettings(batch_size=16, interleaving=interleaving, max_pairs=120)

    def stream(seed: int) -> RealignmentStream:
        corpora = language_corpora(list(parallel), parallel, "dico", dictionaries=dictionaries,
                                   max_pairs=settings.max_pairs)
        return RealignmentStream(corpora, mbert_tokenizer, settings, seed, shuffle_buffer=32)

    uninterrupted = stream(1)
    batches = [uninterrupted.next_batch() for _ in range(30)]      # several passes of ~160 usable pairs
    again = stream(1)
    assert all(batches_equal(again.next_batch(), expected) for expected in batches)
    resumed = stream(1)
    resumed.skip(17)
    assert all(batches_equal(resumed.next_batch(), expected) for expected in batches[17:])
    other = stream(2)
    assert not all(batches_equal(other.next_batch(), expected) for expected in batches[:3])


def test_the_stream_keeps_the_pairs_of_the_reference_loader(mbert_tokenizer):
    """Streamed and read whole, a corpus gives the same aligned pairs (the parity path)."""
    parallel = {"fr": tatoeba("fr")}
    pairs = realignment_pairs(["fr"], parallel, "dico", dictionaries={"fr": dictionary("fr")})["fr"]
    corpus = language_corpora(["fr"], parallel, "dico", dictionaries={"fr": dictionary("fr")})["fr"]
    streamed = [corpus.aligned(item) for item in corpus]
    assert [p for p in streamed if p.links] == pairs
    stream = RealignmentStream({"fr": corpus}, mbert_tokenizer, RealignSettings(batch_size=50), seed=0)
    for _ in range(10):    # past one pass (fewer than 500 linked pairs)
        stream.next_batch()
    report = stream.report["fr"]
    assert report["complete"] and (report["lines"], report["pairs"]) == (500, len(pairs))
    assert report["usable"] + report["without_link"] == len(pairs)


# ----------------------------------------------------------------- the Hub

def test_hub_corpora_stream_with_the_same_seeding_as_local_files(tmp_path, monkeypatch, mbert_tokenizer):
    import datasets

    english = Path(tatoeba("fr")["source"]).read_text(encoding="utf-8").splitlines()
    french = Path(tatoeba("fr")["target"]).read_text(encoding="utf-8").splitlines()
    calls = []

    def fake_load_dataset(dataset_id, config, split=None, streaming=False):
        calls.append((dataset_id, config, split, streaming))
        rows = {"translation": [{"en": e, "fr": f} for e, f in zip(english, french)]}
        return datasets.Dataset.from_dict(rows).to_iterable_dataset()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    tsv = tmp_path / "en-fr.tsv"
    tsv.write_text("".join(f"{e}\t{f}\n" for e, f in zip(english, french)), encoding="utf-8")
    settings = RealignSettings(batch_size=16, max_pairs=300)
    streams = {}
    for name, source in (("hub", "hub"), ("tsv", str(tsv))):
        corpora = language_corpora(["fr"], {"fr": source}, "dico", dictionaries={"fr": dictionary("fr")},
                                   max_pairs=settings.max_pairs)
        streams[name] = RealignmentStream(corpora, mbert_tokenizer, settings, seed=3, shuffle_buffer=64)
    assert all(batches_equal(streams["hub"].next_batch(), streams["tsv"].next_batch()) for _ in range(25))
    assert calls[0] == ("Helsinki-NLP/opus-100", "en-fr", "train", True)
    assert len(calls) == 1, "a restart iterates the same streamed split again"


def test_a_hub_failure_mid_stream_is_one_line(monkeypatch):
    import datasets

    def rows():
        yield {"translation": {"en": "a", "fr": "b"}}
        raise ConnectionError("connection reset by peer\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: rows())
    with pytest.raises(DataError, match=r"cannot read Hub dataset Helsinki-NLP/opus-100 \(config en-fr\): "
                                        r"connection reset by peer; give a local path instead$"):
        list(ParallelCorpus("fr", "hub"))


# ---------------------------------------------------------------- bad data

def test_a_language_without_a_link_in_its_look_ahead_is_named_with_the_pairs_read(tmp_path, mbert_tokenizer):
    unrelated = tmp_path / "unrelated.txt"
    unrelated.write_text("xyzzy\tplugh\n", encoding="utf-8")
    parallel = {"fr": tatoeba("fr"), "de": tatoeba("de")}
    corpora = language_corpora(["fr", "de"], parallel, "dico",
                               dictionaries={"fr": dictionary("fr"), "de": str(unrelated)})
    with pytest.raises(SpecError, match=r"^realignment language de: no usable aligned sentence pair among the "
                                        r"first 40 sentence pairs read \(none with a word link\)$"):
        RealignmentStream(corpora, mbert_tokenizer, RealignSettings(), seed=0, lookahead=40)


def test_an_empty_corpus_is_named(tmp_path, mbert_tokenizer):
    empty = {"source": str(tmp_path / "empty.en"), "target": str(tmp_path / "empty.fr")}
    for path in empty.values():
        Path(path).write_text("", encoding="utf-8")
    corpora = language_corpora(["fr"], {"fr": empty}, "dico", dictionaries={"fr": dictionary("fr")})
    with pytest.raises(DataError, match=rf"^{tmp_path}/empty.fr: realignment language fr: its parallel data holds "
                                        r"no sentence pair$"):
        RealignmentStream(corpora, mbert_tokenizer, RealignSettings(), seed=0)


def test_line_aligned_files_read_lazily_still_refuse_a_length_mismatch(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "a.fr").write_text("un\ndeux\n", encoding="utf-8")
    corpus = ParallelCorpus("fr", {"source": str(tmp_path / "a.en"), "target": str(tmp_path / "a.fr")})
    read = []
    with pytest.raises(DataError, match="differ in length: 3 lines vs 2"):
        for item in corpus:
            read.append(item)
    assert len(read) == 2     # the pairs before the end were given as they were read
    assert list(ParallelCorpus("fr", corpus.source, limit=2)) == [(0, "one", "un"), (1, "two", "deux")]


def test_an_unreadable_parallel_file_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "en-fr.tsv"
    path.write_text("a\tb\n", encoding="utf-8")
    real_open = Path.open

    def refusing_open(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    with pytest.raises(DataError, match=rf"^{path}: cannot read parallel file \(Permission denied\)$"):
        list(ParallelCorpus("fr", str(path)))


def test_pharaoh_links_are_read_beside_the_sentences_and_checked(tmp_path):
    en, fr = tmp_path / "c.en", tmp_path / "c.fr"
    en.write_text("the cat\na dog\n", encoding="utf-8")
    fr.write_text("le chat\nun chien\n", encoding="utf-8")
    links = tmp_path / "c.align"
    links.write_text("0-0 1-1\n\n", encoding="utf-8")
    parallel = {"fr": {"source": str(en), "target": str(fr)}}
    pairs = realignment_pairs(["fr"], parallel, "pharaoh", alignments={"fr": str(links)})["fr"]
    assert [(p.source_words, p.links) for p in pairs] == [(("the", "cat"), ((0, 0), (1, 1)))]
    links.write_text("0-0 1-1\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{links}: 1 alignment lines for more sentence pairs of {fr}$"):
        realignment_pairs(["fr"], parallel, "pharaoh", alignments={"fr": str(links)})
    links.write_text("0-0 1-5\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{links}:1: link 1-5 outside a sentence pair of 2x2 words$"):
        realignment_pairs(["fr"], parallel, "pharaoh", alignments={"fr": str(links)})


# ------------------------------------------------------------------ eflomal

def test_eflomal_is_trained_once_on_at_most_max_pairs_and_its_links_stream_from_disk(tmp_path, monkeypatch):
    parallel = {"fr": repeated_files(tmp_path, "fr", 3)}       # 1,500 pairs
    calls = []
    real = eflomal_aligner.eflomal_link_lines

    def counting(tokenized, settings, progress=None, language=""):
        calls.append(settings)
        return real(tokenized, settings, progress, language)

    monkeypatch.setattr(eflomal_aligner, "eflomal_link_lines", counting)
    progress: list[str] = []
    settings = {"max_pairs": 400, "iterations": 0.3}
    corpus = language_corpora(["fr"], parallel, "eflomal", aligner_settings=settings, root=tmp_path / "cache",
                              progress=progress.append)["fr"]
    assert corpus.sentences.limit == 400 and corpus.info["aligned_lines"] == 400
    assert any("aligning the realignment corpus of fr with eflomal" in line for line in progress)
    assert any(line.startswith("eflomal fr: training on 400 sentence pairs") for line in progress)
    # compact on disk: one pharaoh line per sentence pair, no words
    lines = corpus.links_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 400 and all(set(line) <= set("0123456789- ") for line in lines)
    meta = json.loads((corpus.links_path.parent / "meta.json").read_text(encoding="utf-8"))
    assert meta["format"] == 3 and meta["settings"]["max_pairs"] == 400
    items = list(corpus)
    assert len(items) == 400 and sum(bool(corpus.aligned(item).links) for item in items) == meta["pairs"] > 300
    # a second trial on the same corpus reads the cache; realignment.max_pairs below the cap is another corpus
    again = language_corpora(["fr"], parallel, "eflomal", aligner_settings=settings, root=tmp_path / "cache")["fr"]
    assert len(calls) == 1 and again.info["alignment_key"] == corpus.info["alignment_key"]
    smaller = language_corpora(["fr"], parallel, "eflomal", aligner_settings=settings, max_pairs=100,
                               root=tmp_path / "cache")["fr"]
    assert len(calls) == 2 and smaller.info["aligned_lines"] == 100


def test_eflomal_max_pairs_is_checked():
    with pytest.raises(SpecError, match="aligner_settings.max_pairs must be an integer >= 1, got 0"):
        eflomal_aligner.resolved_settings({"max_pairs": 0})
    assert eflomal_aligner.resolved_settings({})["max_pairs"] == 200_000


def test_interleaving_is_checked():
    with pytest.raises(SpecError, match="realignment.interleaving must be one of shortest, all_pairs, got 'longest'"):
        RealignSettings(interleaving="longest")
    assert RealignSettings().interleaving == "shortest"


def test_offline_a_copy_in_the_datasets_cache_serves_when_streaming_cannot(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(dataset_id, config, split=None, streaming=False):
        calls.append(streaming)
        if streaming:
            raise ConnectionError("offline")
        return datasets.Dataset.from_dict({"translation": [{"en": "a cat", "fr": "un chat"}]})

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert list(ParallelCorpus("fr", "hub")) == [(0, "a cat", "un chat")]
    assert calls == [True, False]
