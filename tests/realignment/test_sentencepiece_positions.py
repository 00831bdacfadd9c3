"""Realignment word positions with a SentencePiece tokenizer (XLM-R): never the bare "▁".

A word is represented by its first sub-word; for most Chinese, Japanese and
Thai words tokenized one by one that was a bare "▁" piece shared by every
word, so every link pulled together the same token. The bare piece is
deleted (after the cut at max_length, as the reference does); a word left
with no sub-word is no candidate and loses its links.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trainables.bundled import bundled_path
from trainables.realignment.batches import collate_pairs, encode_pair
from trainables.realignment.word_pairs import AlignedPair
from trainables.tasks.conllu_reader import read_conllu

PARITY_TOKENIZER = Path(__file__).resolve().parents[1] / "data" / "parity" / "xlmr_alignment" / "tokenizer.json"
TARGETS = {"zh": "ud/zh_pud-ud-test.first50.conllu", "ja": "ud/ja_gsd-ud-test.first50.conllu",
           "th": "ud/th_pud-ud-test.first50.conllu"}


@pytest.fixture(scope="module", params=["parity", "tiny-xlmr"])
def tokenizer(request):
    if request.param == "parity":
        from tokenizers import Tokenizer
        from transformers import XLMRobertaTokenizerFast

        return XLMRobertaTokenizerFast(tokenizer_object=Tokenizer.from_file(str(PARITY_TOKENIZER)))
    from transformers import AutoTokenizer

    from trainables.tiny_models import tiny_model_dir

    return AutoTokenizer.from_pretrained(tiny_model_dir("tiny-xlmr"))


def first_pieces(tokenizer, words) -> list[int | None]:
    """Each word's first piece that is not the bare "▁" (None: it has none), from its token strings."""
    result = []
    for word in words:
        pieces = [token for token in tokenizer.tokenize(word) if token != "▁"]
        result.append(tokenizer.convert_tokens_to_ids(pieces[0]) if pieces else None)
    return result


@pytest.mark.parametrize("language", sorted(TARGETS))
def test_word_positions_never_hold_the_bare_piece(tokenizer, language):
    english = read_conllu(bundled_path("ud/en_pud-ud-test.first50.conllu"))
    targets = read_conllu(bundled_path(TARGETS[language]))
    bare = tokenizer.convert_tokens_to_ids("▁")
    starting_bare = sum(tokenizer.tokenize(w)[:1] == ["▁"] for s in targets for w in s.words)
    assert starting_bare > sum(len(s.words) for s in targets) / 2   # the situation of the bug
    encoded = []
    for source, target in zip(english, targets):
        links = tuple((i, i) for i in range(min(len(source.words), len(target.words))))
        pair = AlignedPair(language, source.words, target.words, links)
        one = encode_pair(tokenizer, pair, max_length=512)   # nothing cut: every word has its place
        for ids, first, words in ((one.source_ids, one.source_first, source.words),
                                  (one.target_ids, one.target_first, target.words)):
            assert bare not in ids
            expected = [piece for piece in first_pieces(tokenizer, words) if piece is not None]
            assert [ids[p] for p in first] == expected
            assert first == sorted(set(first))
        # links follow the words that keep a position
        kept_source = [i for i, p in enumerate(first_pieces(tokenizer, source.words)) if p is not None]
        kept_target = [i for i, p in enumerate(first_pieces(tokenizer, target.words)) if p is not None]
        assert one.links == [(kept_source.index(i), kept_target.index(j)) for i, j in links
                             if i in kept_source and j in kept_target]
        encoded.append(one)
    batch = collate_pairs(encoded[:16], tokenizer.pad_token_id)
    assert (batch.input_ids[batch.word_rows, batch.word_positions] != bare).all()


def test_a_word_of_nothing_but_the_bare_piece_is_no_candidate(tokenizer):
    pair = AlignedPair("xx", ("a", "b", "c"), ("x", "▁", "y"), ((0, 0), (1, 1), (2, 2)))
    encoded = encode_pair(tokenizer, pair)
    assert len(encoded.target_first) == 2 and len(encoded.source_first) == 3
    assert encoded.links == [(0, 0), (2, 1)]


def test_similarity_aligner_never_reads_the_bare_piece():
    """simalign's word vectors (first or mean sub-word) leave the bare "▁" out."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from trainables.realignment.similarity_aligner import word_vectors
    from trainables.tasks.token_classification import bare_metaspace_id
    from trainables.tiny_models import tiny_model_dir

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir("tiny-xlmr"))
    model = AutoModel.from_pretrained(tiny_model_dir("tiny-xlmr")).eval()
    bare = bare_metaspace_id(tokenizer)
    sentences = [list(s.words) for s in read_conllu(bundled_path(TARGETS["ja"]), 8)]
    with torch.no_grad():
        first = word_vectors(model, tokenizer, sentences, layer=2, word_vector="first")
        outputs = model(**tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt"),
                        output_hidden_states=True).hidden_states[2]
    encoding = tokenizer(sentences, is_split_into_words=True, padding=True)
    for row, (vectors, present) in enumerate(first):
        ids, word_ids = encoding["input_ids"][row], encoding.word_ids(row)
        for vector, word in zip(vectors, present):
            position = next(t for t, w in enumerate(word_ids) if w == word and ids[t] != bare)
            assert torch.allclose(vector, outputs[row, position], atol=1e-5)
        # a word whose pieces are all "▁" has no vector at all
        for word in set(range(len(sentences[row]))) - set(present):
            assert all(ids[t] == bare for t, w in enumerate(word_ids) if w == word)
