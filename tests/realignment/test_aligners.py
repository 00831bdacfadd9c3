"""The in-process aligners (eflomal, simalign), skipped lines and the alignment cache."""

import pytest
import torch

from trainables.errors import SpecError
from trainables.realignment.aligners import AlignmentRequest, aligned_pairs
from trainables.realignment import eflomal_aligner
from trainables.realignment.alignment_cache import (
    cached_aligned_pairs, cached_alignment, encoder_fingerprint, skipped_lines,
)
from trainables.realignment.alignment_eval import bundled_gold_sets
from trainables.realignment.eflomal_aligner import eflomal_links, symmetrised_links
from trainables.realignment.pretokenization import segmenter_name
from trainables.realignment.similarity_aligner import default_layer, mutual_argmax_links, simalign_links

UNALIGNABLE = [((), ("bonjour",)),            # empty side
               ((".", "!"), ("?",)),         # only punctuation
               (("hello",), ("«", "»"))]


# ------------------------------------------------------------ symmetrisation

# A hand-made 6x6 case: forward and reverse agree on (0,0) and (1,1).
FORWARD = [(0, 0), (1, 1), (2, 2), (5, 3)]
REVERSE = [(0, 0), (1, 1), (0, 1), (2, 5), (5, 4)]


def test_intersection_keeps_the_agreed_links():
    assert symmetrised_links(FORWARD, REVERSE, "intersection", 6, 6) == [(0, 0), (1, 1)]


def test_grow_diag_final_and_by_hand():
    # grow-diag adds (2,2), a diagonal neighbour of (1,1) with both words unaligned,
    # but not (0,1), whose words are both aligned already; final-and adds the
    # forward link (5,3) (both words unaligned) but neither (2,5) nor (5,4),
    # whose source word is aligned by then.
    assert symmetrised_links(FORWARD, REVERSE, "grow-diag-final-and", 6, 6) == [
        (0, 0), (1, 1), (2, 2), (5, 3)]


def test_grow_diag_grows_along_the_union():
    forward, reverse = [(0, 0), (1, 1)], [(0, 0), (1, 2)]
    # (1,1) neighbours (0,0) and covers unaligned words; then (1,2) still
    # covers an unaligned target word
    assert symmetrised_links(forward, reverse, "grow-diag-final-and", 2, 3) == [(0, 0), (1, 1), (1, 2)]


def test_unknown_symmetrisation_is_a_spec_error():
    with pytest.raises(SpecError, match="did you mean intersection"):
        eflomal_links([(("a",), ("b",))], {"symmetrisation": "intersect"})
    with pytest.raises(SpecError, match="unknown key in aligner_settings"):
        eflomal_links([(("a",), ("b",))], {"seed": 1})


# ------------------------------------------------------------------- eflomal

# Short pairs of the bundled en-fr gold set, links checked by hand.
HAND_CHECKED = {
    ("we", "accept", "your", "view", "."): {(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)},
    ("where", "is", "the", "AIB", "?"): {(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)},
    ("oh", ",", "oh", "!"): {(0, 0), (1, 1), (2, 2), (3, 3)},
    ("order", "."): {(0, 2), (1, 3)},     # order . ||| a le ordre .
}


@pytest.fixture(scope="module")
def en_fr():
    return bundled_gold_sets()["en-fr"]


def test_eflomal_finds_the_hand_checked_links(en_fr):
    # trained on the 100 gold pairs; eflomal cannot be seeded, so allow one miss
    links = eflomal_links(en_fr.tokenized, {"symmetrisation": "intersection"})
    expected = found = wrong = 0
    for (src, _), predicted in zip(en_fr.tokenized, links):
        if src in HAND_CHECKED:
            expected += len(HAND_CHECKED[src])
            found += len(set(predicted) & HAND_CHECKED[src])
            wrong += len(set(predicted) - HAND_CHECKED[src])
    assert expected == 24   # "oh , oh !" occurs 3 times
    assert found >= expected - 1 and wrong <= 1


def test_eflomal_pairs_through_the_registry_are_one_to_one():
    tokenized = [(("the", "cat", "sleeps", "."), ("le", "chat", "dort", ".")),
                 (("the", "dog", "sleeps", "."), ("le", "chien", "dort", ".")),
                 (("a", "cat", "."), ("un", "chat", "."))] * 10 + UNALIGNABLE
    pairs = aligned_pairs("eflomal", AlignmentRequest("fr", tokenized))
    assert 0 < len(pairs) <= 30
    for pair in pairs:
        sources = [i for i, _ in pair.links]
        targets = [j for _, j in pair.links]
        assert len(set(sources)) == len(sources) and len(set(targets)) == len(targets)
        assert all(i < len(pair.source_words) and j < len(pair.target_words) for i, j in pair.links)


def test_eflomal_skips_lines_without_words_and_does_not_crash(en_fr):
    tokenized = list(en_fr.tokenized) + UNALIGNABLE
    links = eflomal_links(tokenized)
    assert links[-3:] == [[], [], []]
    # eflomal cannot be seeded. On these 100 real sentence pairs 30 runs linked 96-100 lines;
    # a corpus of identical lines is degenerate (as few as 2 of 20 linked) and must not be used here.
    assert sum(bool(line) for line in links[:100]) >= 80
    assert all(0 <= i < len(src) and 0 <= j < len(tgt)
               for (src, tgt), line in zip(tokenized, links) for i, j in line)
    assert eflomal_links(UNALIGNABLE) == [[], [], []]     # nothing to train on: no eflomal run at all


# ------------------------------------------------------------------ simalign

# Embedding rows shared by a word and its translation (see _tiny_encoder):
# the hand-checked links of the bundled en-fr pairs above, and a made-up
# pair with a two-piece word ("pois ##son").
TRANSLATIONS = {"nous": "we", "acceptons": "accept", "votre": "your", "opinion": "view",
                "où": "where", "est": "is", "la": "the", "CAI": "AIB", "ordre": "order",
                "le": "the", "chat": "cat", "mange": "eats", "pois": "fish", "##son": "fish"}
WORDS = sorted(set(TRANSLATIONS) | set(TRANSLATIONS.values()) | {".", "?", "a", "du"})


def _tiny_encoder(tmp_path, kind):
    """A tiny random model whose layer-0 vectors make translations identical.

    Position and token-type embeddings are zero and a translation's
    sub-words share the English word's embedding row, so at layer 0 (the
    embedding output) the cosine of a translation pair is exactly 1.
    """
    from transformers import BertConfig, BertModel, BertTokenizer, DistilBertConfig, DistilBertModel

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab), do_lower_case=False)
    torch.manual_seed(0)
    if kind == "bert":
        model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64))
    else:
        model = DistilBertModel(DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2,
                                                 hidden_dim=64))
    embeddings = model.embeddings
    with torch.no_grad():
        embeddings.position_embeddings.weight.zero_()
        if hasattr(embeddings, "token_type_embeddings"):
            embeddings.token_type_embeddings.weight.zero_()
        ids = tokenizer.convert_tokens_to_ids
        for foreign, english in TRANSLATIONS.items():
            embeddings.word_embeddings.weight[ids(foreign)] = embeddings.word_embeddings.weight[ids(english)]
    return model, tokenizer


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_simalign_links_hand_checked_pairs(tmp_path, kind):
    model, tokenizer = _tiny_encoder(tmp_path, kind)
    model.train()
    tokenized = [(("the", "cat", "eats", "fish", "."), ("le", "chat", "mange", "du", "poisson", ".")),
                 (("fish", "eats", "the", "cat"), ("le", "chat", "mange", "poisson"))] + UNALIGNABLE
    bundled = [pair for pair in bundled_gold_sets()["en-fr"].tokenized
               if pair[0] in HAND_CHECKED and pair[0] != ("oh", ",", "oh", "!")]
    assert len(bundled) == 3
    links = simalign_links(tokenized + bundled, (model, tokenizer), {"layer": 0})
    # "du" has no counterpart; "poisson" is two sub-words (averaged)
    assert links[0] == [(0, 0), (1, 1), (2, 2), (3, 4), (4, 5)]
    assert links[1] == [(0, 3), (1, 2), (2, 0), (3, 1)]
    assert links[2:5] == [[], [], []]
    for (src, _), found in zip(bundled, links[5:]):
        assert set(found) == HAND_CHECKED[src]
    assert model.training                      # mode given back
    links = simalign_links(tokenized, (model, tokenizer), {"layer": 0, "word_vector": "first"})
    assert links[0] == [(0, 0), (1, 1), (2, 2), (3, 4), (4, 5)]


def test_simalign_on_a_random_model_gives_one_to_one_links_and_keeps_eval_mode(tmp_path):
    model, tokenizer = _tiny_encoder(tmp_path, "bert")
    model.eval()
    tokenized = [(("the", "cat", "eats", "fish", "."), ("le", "chat", "mange", "du", "poisson", "."))]
    request = AlignmentRequest("fr", tokenized, encoder=(model, tokenizer))   # default layer: 1 of 2
    pairs = aligned_pairs("simalign", request)
    for pair in pairs:
        assert len({i for i, _ in pair.links}) == len(pair.links) == len({j for _, j in pair.links})
    assert not model.training
    assert all(parameter.grad is None for parameter in model.parameters())


def test_simalign_settings_are_checked(tmp_path):
    encoder = _tiny_encoder(tmp_path, "bert")
    with pytest.raises(SpecError, match="layer must be an integer from 0 to 2"):
        simalign_links([(("a",), ("b",))], encoder, {"layer": 3})
    with pytest.raises(SpecError, match="needs the trial's encoder"):
        simalign_links([(("a",), ("b",))], None)


def test_simalign_default_layer_and_mutual_argmax():
    assert default_layer(12) == 8 and default_layer(6) == 4 and default_layer(24) == 16
    assert default_layer(2) == 1
    similarity = torch.tensor([[0.9, 0.6, 0.0],      # row 0 prefers column 0, which prefers row 1
                               [0.95, 0.1, 0.0],
                               [0.0, 0.7, 0.2]])
    assert mutual_argmax_links(similarity) == [(1, 0), (2, 1)]


# --------------------------------------------------------------------- cache

def test_second_call_reads_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_eflomal_link_lines(tokenized, settings, progress=None, language=""):
        calls.append(settings)
        return [[(0, 0), (1, 1)] if (src, tgt) == (("the", "cat"), ("le", "chat")) else []
                for src, tgt in tokenized]

    monkeypatch.setattr(eflomal_aligner, "eflomal_link_lines", fake_eflomal_link_lines)
    tokenized = [(("the", "cat"), ("le", "chat"))] + UNALIGNABLE
    request = AlignmentRequest("fr", tokenized)
    first = cached_alignment("eflomal", request, "corpus-1", root=tmp_path)
    second = cached_alignment("eflomal", request, "corpus-1", root=tmp_path)
    assert len(calls) == 1
    assert first == second
    assert first.pairs[0].links == ((0, 0), (1, 1))
    assert first.skipped == 3 and first.lines == 4
    assert first.segmenter == segmenter_name("fr")
    # the same settings spelt out give the same key; other settings or another corpus do not
    cached_aligned_pairs("eflomal", AlignmentRequest("fr", tokenized, settings={"samplers": 3}), "corpus-1",
                         root=tmp_path)
    assert len(calls) == 1
    cached_aligned_pairs("eflomal", AlignmentRequest("fr", tokenized, settings={"symmetrisation": "intersection"}),
                         "corpus-1", root=tmp_path)
    cached_aligned_pairs("eflomal", request, "corpus-2", root=tmp_path)
    assert len(calls) == 3


def test_cache_records_the_segmenter_and_skips(tmp_path, en_fr):
    import json

    tokenized = list(en_fr.tokenized) + UNALIGNABLE
    outcome = cached_alignment("eflomal", AlignmentRequest("zh", tokenized), root=tmp_path)
    meta = json.loads((tmp_path / "alignments" / outcome.key / "meta.json").read_text())
    assert meta["segmenter"] == segmenter_name("zh") == outcome.segmenter
    assert meta["skipped"] == outcome.skipped == skipped_lines(tokenized) == 3
    assert meta["lines"] == outcome.lines == 103
    # eflomal cannot be seeded: see the bounds measured above
    assert 80 <= len(outcome.pairs) <= 100
    # the cached pairs come back exactly on the next call
    assert cached_alignment("eflomal", AlignmentRequest("zh", tokenized), root=tmp_path) == outcome


def test_encoder_fingerprint_follows_the_weights(tmp_path):
    model, tokenizer = _tiny_encoder(tmp_path, "bert")
    before = encoder_fingerprint((model, tokenizer))
    assert encoder_fingerprint((model, tokenizer)) == before
    with torch.no_grad():
        model.encoder.layer[0].output.dense.bias.add_(1.0)
    assert encoder_fingerprint((model, tokenizer)) != before
