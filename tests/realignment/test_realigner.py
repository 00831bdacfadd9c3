"""The realignment data stream and the per-model settings."""

from __future__ import annotations

import pytest
import torch

from trainables.errors import DataError, SpecError
from trainables.realignment.batches import collate_pairs, encode_pair
from trainables.realignment.realigner import RealignmentStream, RealignSettings, interleave
from trainables.realignment.word_pairs import AlignedPair


def pair(language: str, index: int) -> AlignedPair:
    return AlignedPair(language, ("the", f"w{index}"), ("x", f"v{index}"), ((1, 1),))


def test_interleave_is_round_robin_until_every_language_is_used_up():
    merged = interleave({"fr": [pair("fr", 0), pair("fr", 1), pair("fr", 2)], "de": [pair("de", 0)],
                         "ru": [pair("ru", 0), pair("ru", 1)]})
    assert [(p.language, p.source_words[1]) for p in merged] == [
        ("fr", "w0"), ("de", "w0"), ("ru", "w0"), ("fr", "w1"), ("ru", "w1"), ("fr", "w2")]


def test_a_language_without_usable_pairs_is_named(mbert_tokenizer):
    with pytest.raises(DataError, match="realignment language ja: its parallel data holds no sentence pair"):
        RealignmentStream({"fr": [pair("fr", 0)], "ja": []}, mbert_tokenizer, RealignSettings(), seed=0)


def test_stream_is_seeded_and_skip_replays_it(mbert_tokenizer):
    pairs = {"fr": [pair("fr", i) for i in range(7)], "de": [pair("de", i) for i in range(5)]}
    settings = RealignSettings(batch_size=4)
    first = RealignmentStream(pairs, mbert_tokenizer, settings, seed=1)
    second = RealignmentStream(pairs, mbert_tokenizer, settings, seed=1)
    batches = [first.next_batch() for _ in range(6)]      # more than one pass over 12 pairs
    second.skip(4)
    for expected in batches[4:]:
        assert torch.equal(second.next_batch().input_ids, expected.input_ids)
    other = RealignmentStream(pairs, mbert_tokenizer, settings, seed=2)
    assert not all(torch.equal(other.next_batch().input_ids, b.input_ids) for b in batches[:3])


def test_batch_layout_first_subwords_and_links(mbert_tokenizer):
    aligned = AlignedPair("fr", ("Unbelievably", "good"), ("Incroyablement", "bon"), ((0, 0), (1, 1)))
    encoded = encode_pair(mbert_tokenizer, aligned)
    batch = collate_pairs([encoded, encode_pair(mbert_tokenizer, pair("fr", 3))], mbert_tokenizer.pad_token_id)
    assert batch.input_ids.shape[0] == 4                  # 2 English sides, then 2 translations
    assert encoded.source_first[0] == 1                   # after [CLS]
    # the second English word starts after every piece of the first
    assert encoded.source_first[1] == 1 + len(mbert_tokenizer.tokenize("Unbelievably"))
    words = list(zip(batch.word_rows.tolist(), batch.word_positions.tolist()))
    assert len(words) == 8
    source_index, target_index = batch.links[0].tolist()
    assert words[source_index] == (0, 1) and words[target_index][0] == 2
    assert batch.num_pairs == 2


def test_words_beyond_max_length_lose_their_links(mbert_tokenizer):
    long = AlignedPair("fr", tuple(f"w{i}" for i in range(50)), tuple(f"v{i}" for i in range(50)),
                       ((0, 0), (45, 45)))
    encoded = encode_pair(mbert_tokenizer, long, max_length=16)
    assert len(encoded.source_ids) <= 16 and encoded.links == [(0, 0)]


def test_defaults_are_the_references():
    """Reference: Adam at 2e-5 (7.5e-6 for XLM-R), 16 pairs a batch, T = 0.1, 96 sub-words a side,
    the penultimate block's output, a mean over the batch's queries, a d -> d -> 128 head;
    0.1 is its "during" weight."""
    settings = RealignSettings()
    assert (settings.learning_rate, settings.xlmr_learning_rate, settings.batch_size, settings.temperature,
            settings.max_length, settings.layer, settings.loss_reduction, settings.projection,
            settings.projection_dim, settings.during_weight) == (
        2e-5, 7.5e-6, 16, 0.1, 96, "penultimate", "queries", True, 128, 0.1)


def test_pairs_without_a_link_within_max_length_are_dropped(mbert_tokenizer):
    far = AlignedPair("fr", tuple(f"w{i}" for i in range(40)), tuple(f"v{i}" for i in range(40)), ((30, 30),))
    settings = RealignSettings(batch_size=2, max_length=16)
    stream = RealignmentStream({"fr": [far, pair("fr", 0), far, pair("fr", 1)]}, mbert_tokenizer, settings, seed=0)
    for _ in range(3):
        batch = stream.next_batch()
        assert batch.num_pairs == 2 and len(batch.links) == 2      # every pair of a batch has its link
    # the counts are those of the first pass, read lazily: complete once 3 batches went past it
    assert stream.num_pairs == 2 and stream.pairs_without_link == {"fr": 2}
    assert stream.report["fr"]["complete"] and stream.report["fr"]["lines"] == 4
    # with room for the link the same pair is kept
    assert RealignmentStream({"fr": [far]}, mbert_tokenizer, RealignSettings(max_length=96), seed=0).num_pairs == 1


def test_a_language_whose_pairs_all_lose_their_links_is_named(mbert_tokenizer):
    far = AlignedPair("ja", tuple(f"w{i}" for i in range(40)), tuple(f"v{i}" for i in range(40)), ((30, 30),))
    with pytest.raises(SpecError, match=r"realignment language ja: no usable aligned sentence pair among its 1 "
                                        r"sentence pair\(s\) \(1 with a word link, none within "
                                        r"realignment.max_length 16 sub-words\)"):
        RealignmentStream({"fr": [pair("fr", 0)], "ja": [far]}, mbert_tokenizer, RealignSettings(max_length=16),
                          seed=0)


def test_xlmr_gets_its_own_learning_rates():
    from trainables.tasks.registry import TASKS
    from trainables.trial import finetune_settings, realign_settings
    from trainables.trial_spec import TrialSpec

    spec = TrialSpec(model="tiny-xlmr", task="pos", strategy="front", seed=1, languages=("fr",),
                     data={"train": "x", "eval": {}})
    assert realign_settings(spec, xlmr=True).learning_rate == 7.5e-6
    assert realign_settings(spec, xlmr=False).learning_rate == 2e-5
    assert finetune_settings(spec, xlmr=True).learning_rate == 7.5e-6
    assert finetune_settings(spec, xlmr=False).learning_rate == 2e-5
    # an explicit learning rate wins
    explicit = TrialSpec(**{**spec.__dict__, "realignment": {"learning_rate": 1e-3},
                            "finetune": {"learning_rate": 3e-5}})
    assert realign_settings(explicit, xlmr=True).learning_rate == 1e-3
    assert finetune_settings(explicit, xlmr=True).learning_rate == 3e-5
    qa = finetune_settings(TrialSpec(**{**spec.__dict__, "task": "qa"}), xlmr=False)
    qa_defaults = TASKS["qa"].defaults      # the task's own defaults, not another task's
    assert (qa.max_length, qa.extra["doc_stride"], qa.epochs) == (
        qa_defaults["max_length"], qa_defaults["doc_stride"], qa_defaults["epochs"])
