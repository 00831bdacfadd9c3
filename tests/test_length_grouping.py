"""Length-grouped batches: same data, less padding, deterministic, resumable; evaluation in length order."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from trainables.bundled import bundled_path
from trainables.errors import SpecError
from trainables.length_grouping import (WINDOW_BATCHES, check_batching, epoch_batches, grouped_batches,
                                        length_sorted_batches, padding_counts)

from trial_fixtures import small_pos_experiment


def skewed_lengths(count: int, seed: int = 0) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randint(3, 97, (count,), generator=generator)).tolist()


# ------------------------------------------------------------------ fine-tuning batches
def test_random_batching_is_the_order_the_loop_always_drew():
    lengths = skewed_lengths(200)
    order = torch.randperm(200, generator=torch.Generator().manual_seed(7 * 1009 + 3)).tolist()
    assert epoch_batches(lengths, 32, seed=7, epoch=3) == [order[i:i + 32] for i in range(0, 200, 32)]


def test_length_grouped_batches_hold_every_example_once_with_little_padding():
    lengths = skewed_lengths(5000)
    batches = epoch_batches(lengths, 32, seed=1, epoch=0, batching="length_grouped")
    assert sorted(i for batch in batches for i in batch) == list(range(5000))
    sizes = Counter(len(batch) for batch in batches)
    assert sizes == Counter({32: 5000 // 32, 5000 % 32: 1})      # only one short batch
    real, grouped = padding_counts(batches, lengths)
    _, random_padded = padding_counts(epoch_batches(lengths, 32, seed=1, epoch=0), lengths)
    assert grouped / real < 1.1 < 1.5 < random_padded / real
    # seed and epoch only: the same batches again, others in the next epoch
    assert batches == epoch_batches(lengths, 32, seed=1, epoch=0, batching="length_grouped")
    assert batches != epoch_batches(lengths, 32, seed=1, epoch=1, batching="length_grouped")
    assert batches != epoch_batches(lengths, 32, seed=2, epoch=0, batching="length_grouped")


def test_grouping_stays_inside_a_window_and_draws_its_batches_in_random_order():
    lengths = list(range(400))                      # index = length
    order = list(range(400))
    batches = grouped_batches(order, lengths, 4, lambda n: list(range(n))[::-1], window_batches=10)
    # windows of 40: each batch comes from one window, sorted longest first, drawn in the given order
    assert batches[0] == [3, 2, 1, 0] and batches[9] == [39, 38, 37, 36] and batches[10] == [43, 42, 41, 40]
    seeded = epoch_batches(lengths, 4, seed=0, epoch=0, batching="length_grouped")
    first_window = [max(lengths[i] for i in batch) for batch in seeded[:WINDOW_BATCHES]]
    assert first_window != sorted(first_window, reverse=True)    # not longest to shortest


def test_evaluation_batches_are_sorted_longest_first():
    assert length_sorted_batches([3, 9, 1, 9, 5], 2) == [[1, 3], [4, 0], [2]]


def test_unknown_batching_is_a_one_line_error():
    with pytest.raises(SpecError, match="finetune.batching must be one of random, length_grouped, got 'sorted'"):
        check_batching("sorted", "finetune.batching")


# ------------------------------------------------------------------ spec: option, identity
def specs(**sections):
    from orchestrator.experiment import experiment_from_dict

    raw = small_pos_experiment(strategies=["front"])
    for section, values in sections.items():
        raw[section] = {**raw[section], **values}
    return experiment_from_dict(raw).trials[0]


def test_batching_options_change_the_trial_key_only_when_not_the_default():
    default = specs()
    assert specs(finetune={"batching": "random"}).key == default.key
    assert specs(realignment={"batching": "random"}).key == default.key
    keys = {default.key, specs(finetune={"batching": "length_grouped"}).key,
            specs(realignment={"batching": "length_grouped"}).key}
    assert len(keys) == 3


@pytest.mark.parametrize("section, message", [
    ("finetune", "finetune.batching"),
    ("realignment", "realignment.batching must be one of random, length_grouped"),
])
def test_a_bad_batching_value_is_refused_at_the_boundary(section, message):
    with pytest.raises(SpecError, match=message):
        specs(**{section: {"batching": "by_length"}})


# ------------------------------------------------------------------ realignment stream
def stream(tokenizer, batching: str, seed: int = 1):
    from trainables.realignment.corpus import language_corpora
    from trainables.realignment.realigner import RealignmentStream, RealignSettings

    parallel = {language: {"source": str(bundled_path(f"parallel/tatoeba/tatoeba.{code}-eng.eng.first500")),
                           "target": str(bundled_path(f"parallel/tatoeba/tatoeba.{code}-eng.{code}.first500"))}
                for language, code in (("fr", "fra"), ("ru", "rus"))}
    dictionaries = {language: str(bundled_path(f"dictionaries/muse/en-{language}.first3000.txt"))
                    for language in parallel}
    settings = RealignSettings(batch_size=4, batching=batching)
    corpora = language_corpora(list(parallel), parallel, "dico", dictionaries=dictionaries)
    return RealignmentStream(corpora, tokenizer, settings, seed, shuffle_buffer=64)


def pair_ids(batch) -> list[tuple[int, ...]]:
    half = batch.num_pairs
    rows = [tuple(ids[mask.bool()].tolist()) for ids, mask in zip(batch.input_ids, batch.attention_mask)]
    return [rows[i] + (-1,) + rows[half + i] for i in range(half)]


def test_grouped_stream_batches_the_same_pairs_window_by_window_with_less_padding(mbert_tokenizer):
    window = WINDOW_BATCHES
    plain, grouped = stream(mbert_tokenizer, "random"), stream(mbert_tokenizer, "length_grouped")
    plain_batches = [plain.next_batch() for _ in range(2 * window)]
    grouped_batches_ = [grouped.next_batch() for _ in range(2 * window)]
    for first in (0, window):       # each window holds the same pairs, in other batches
        assert (Counter(p for b in plain_batches[first:first + window] for p in pair_ids(b))
                == Counter(p for b in grouped_batches_[first:first + window] for p in pair_ids(b)))
    assert [pair_ids(b) for b in plain_batches[:window]] != [pair_ids(b) for b in grouped_batches_[:window]]
    for batches in (plain_batches, grouped_batches_):
        assert all(b.real_tokens == int(b.attention_mask.sum()) and b.padded_tokens == b.input_ids.numel()
                   for b in batches)
    padding = {name: sum(b.padded_tokens for b in batches) / sum(b.real_tokens for b in batches)
               for name, batches in (("random", plain_batches), ("grouped", grouped_batches_))}
    assert padding["grouped"] < 1.2 < 1.4 < padding["random"]


def test_grouped_stream_skips_to_the_same_batch_mid_window(mbert_tokenizer):
    uninterrupted = stream(mbert_tokenizer, "length_grouped", seed=5)
    expected = [pair_ids(uninterrupted.next_batch()) for _ in range(WINDOW_BATCHES + 8)]
    for skipped in (3, WINDOW_BATCHES + 2):
        resumed = stream(mbert_tokenizer, "length_grouped", seed=5)
        resumed.skip(skipped)
        assert [pair_ids(resumed.next_batch()) for _ in range(5)] == expected[skipped:skipped + 5]
    assert expected != [pair_ids(b) for b in
                        (lambda s: [s.next_batch() for _ in range(WINDOW_BATCHES + 8)])(
                            stream(mbert_tokenizer, "length_grouped", seed=6))]


def test_memoised_word_pieces_encode_pairs_exactly_as_the_tokenizer(mbert_tokenizer):
    from trainables.realignment.batches import WordPieces, encode_pair
    from trainables.realignment.word_pairs import AlignedPair
    from trainables.tasks.token_classification import raw_word_pieces

    words = ["Tom", "isn't", "here", "Tom", "", "日本語", "naïve"]
    pieces = WordPieces(mbert_tokenizer, max_words=4)
    assert pieces(words) == raw_word_pieces(mbert_tokenizer, words)
    assert pieces(words[::-1]) == raw_word_pieces(mbert_tokenizer, words[::-1])   # past a reset at 4 words
    pair = AlignedPair("fr", ("Tom", "is", "here"), ("Tom", "est", "là"), ((0, 0), (2, 2)))
    assert encode_pair(mbert_tokenizer, pair, 8, pieces=pieces) == encode_pair(mbert_tokenizer, pair, 8)


# ------------------------------------------------------------------ evaluation in length order
@pytest.fixture(scope="module")
def tiny_encoder(mbert_tokenizer):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=len(mbert_tokenizer), hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64))


def test_token_classification_predictions_come_back_in_sentence_order(mbert_tokenizer, tiny_encoder):
    from trainables.tasks.base import FinetuneSettings
    from trainables.tasks.registry import get_task

    task = get_task("pos").load()
    sentences = task.load_examples(str(bundled_path("ud/en_ewt-ud-test.first100.conllu")), "en", "test")[:24]
    torch.manual_seed(1)
    model = task.build_model(tiny_encoder, 0.1)
    # one sentence per batch: no padding, so no order can matter; against 16 a batch in length order
    alone = task.predict(model, mbert_tokenizer, sentences, FinetuneSettings(eval_batch_size=1), torch.device("cpu"))
    batched = task.predict(model, mbert_tokenizer, sentences, FinetuneSettings(eval_batch_size=16),
                           torch.device("cpu"))
    assert batched == alone
    assert [len(row) for row in batched] == [len(s.words) for s in sentences]


def test_nli_predictions_come_back_in_example_order(mbert_tokenizer):
    from trainables.tasks.base import FinetuneSettings
    from trainables.tasks.nli import pair_features
    from trainables.tasks.registry import get_task

    class LengthLabel(torch.nn.Module):
        """Predicts label (pair length mod 3): a prediction put back at the wrong index shows."""

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            return torch.nn.functional.one_hot(attention_mask.sum(1) % 3, 3).float()

    task = get_task("nli").load()
    examples = task.load_examples(str(bundled_path("xnli")), "en", "test", 40)
    settings = FinetuneSettings(eval_batch_size=16)
    expected = [len(f["input_ids"]) % 3 for f in pair_features(examples, mbert_tokenizer, settings.eval_max_length)]
    assert task.predict(LengthLabel(), mbert_tokenizer, examples, settings, torch.device("cpu")) == expected
    assert len(set(expected)) == 3


def test_qa_answers_come_back_in_question_order(mbert_tokenizer, tiny_encoder):
    from trainables.tasks.base import FinetuneSettings
    from trainables.tasks.registry import get_task

    definition = get_task("qa")
    task = definition.load()
    examples = task.load_examples(str(bundled_path("qa/tydiqa_goldp_en_train.first300.json")), "en", "test", 8)
    torch.manual_seed(1)
    model = task.build_model(tiny_encoder)

    def settings(batch_size: int) -> FinetuneSettings:
        # short windows: several per question, so the best-window choice is exercised
        return FinetuneSettings(eval_batch_size=batch_size, eval_max_length=64,
                                extra={**definition.defaults, "eval_doc_stride": 24})

    alone = task.predict(model, mbert_tokenizer, examples, settings(1), torch.device("cpu"))
    batched = task.predict(model, mbert_tokenizer, examples, settings(16), torch.device("cpu"))
    assert batched == alone and len(set(alone)) > 1
