"""Sizes of the Hub datasets the paper's grid reads: one table, read by ``alignfreeze plan``.

``plan`` counts a grid's optimizer steps before anything is downloaded, so
the sizes of the Hub splits are written here once, with where each comes
from. Local files are counted with the task's own reader instead.

A training *sequence* is what the fine-tuning loop batches: one per
sentence or sentence pair, except where a long input is cut into windows
(QA: a SQuAD question gives several windows of 96 sub-words overlapping by
32). ``SEQUENCES_PER_EXAMPLE`` holds those ratios, measured with the mBERT
WordPiece tokenizer on the bundled samples (``python -m
trainables.dataset_sizes`` measures them again).
"""

from __future__ import annotations

from dataclasses import dataclass

# ---- fine-tuning (English training splits)

# UD treebank -> training sentences (any Hub copy of the treebank: the PoS
# task names its dataset id, the treebank is the config). UD 2.x en_ewt.
UD_TRAIN_SENTENCES: dict[str, int] = {"en_ewt": 12_543}

# (Hub dataset id, config, split) -> examples, from the datasets' cards.
HUB_SPLIT_EXAMPLES: dict[tuple[str, str | None, str], int] = {
    ("unimelb-nlp/wikiann", "en", "train"): 20_000,       # WikiANN en: 20,000 sentences
    ("nyu-mll/multi_nli", None, "train"): 392_702,        # MultiNLI: 392,702 pairs
    ("rajpurkar/squad", None, "train"): 87_599,           # SQuAD v1.1: 87,599 questions
}

# Training sequences per example at the default windows (96 sub-words; QA
# overlap 32). Measured with the mBERT tokenizer: QA 2.73 windows per
# question on the bundled XQuAD en articles (SQuAD v1.1 dev contexts; 265
# windows for 97 questions; TyDiQA-GoldP en: 2.68); PoS, NER and NLI 1.00
# on the bundled en_ewt, WikiANN en and XNLI en samples (a PoS/NER sentence
# longer than a window is split between words: rare in en_ewt and WikiANN;
# NLI pairs are cut, never split).
SEQUENCES_PER_EXAMPLE: dict[str, float] = {"pos": 1.0, "ner": 1.0, "nli": 1.0, "qa": 2.73}

# ---- evaluation (target-language test splits): coarse figures, per language

# Test examples per language. WikiANN: 10,000 (1,000 for af, hi, ta; the
# dataset card's splits); XNLI: 5,010; XQuAD: 1,190 questions; UD: the
# paper's treebanks' test sets run from about 400 sentences (fr_gsd) to
# 10,148 (cs_pdt): 1,200 is a rough mean, not a count.
EVAL_EXAMPLES_PER_LANGUAGE: dict[str, int] = {"pos": 1_200, "ner": 10_000, "nli": 5_010, "qa": 1_190}
EVAL_EXAMPLES_EXCEPTIONS: dict[tuple[str, str], int] = {
    ("ner", "af"): 1_000, ("ner", "hi"): 1_000, ("ner", "ta"): 1_000,
    ("pos", "en"): 2_077,                                  # en_ewt test
}
# Evaluation windows per example at the default evaluation lengths (QA:
# windows of 384 overlapping by 128): measured on the 8 bundled XQuAD
# languages, from 1.00 (de, en) to 1.96 (th), 1.24 over all.
EVAL_SEQUENCES_PER_EXAMPLE: dict[str, float] = {"pos": 1.0, "ner": 1.0, "nli": 1.0, "qa": 1.24}

# ---- realignment corpus: OPUS-100 en-xx training pairs

# Most en-xx pairs of OPUS-100 hold 1,000,000 training pairs (44 of its 99
# do; its card). Smaller ones among the languages used here, from the
# Helsinki-NLP/opus-100 dataset card; checked there as 1,000,000: ar, da,
# fi, ko, sv; the others of the paper's 34 are assumed to be 1,000,000.
OPUS100_DEFAULT_PAIRS = 1_000_000
OPUS100_TRAIN_PAIRS: dict[str, int] = {"af": 275_512, "hi": 534_319, "ta": 227_014,
                                       "gl": 515_344, "kk": 79_927, "te": 64_352}


@dataclass(frozen=True)
class HubSize:
    examples: int
    where: str     # what was looked up: "dataset [config] split"


def hub_train_examples(task: str, dataset_id: str, config: str | None, split: str) -> HubSize | None:
    """Examples of a Hub training split from the table; None when it is not there."""
    where = f"{dataset_id}" + (f" [{config}]" if config else "") + f" {split}"
    if task == "pos":
        size = UD_TRAIN_SENTENCES.get(config or "") if split == "train" else None
    else:
        size = HUB_SPLIT_EXAMPLES.get((dataset_id, config, split))
    return None if size is None else HubSize(size, where)


def eval_examples(task: str, language: str) -> int:
    """Coarse test-set size of ``task`` in ``language`` (see EVAL_EXAMPLES_PER_LANGUAGE)."""
    return EVAL_EXAMPLES_EXCEPTIONS.get((task, language), EVAL_EXAMPLES_PER_LANGUAGE[task])


def opus100_pairs(language: str) -> int:
    return OPUS100_TRAIN_PAIRS.get(language, OPUS100_DEFAULT_PAIRS)


def _measure() -> None:
    """Print the sequences-per-example ratios on the bundled samples (mBERT tokenizer)."""
    import glob

    from trainables.bundled import bundled_path
    from trainables.tasks.qa import qa_windows
    from trainables.tasks.registry import get_task
    from trainables.tiny_models import mbert_tokenizer
    from trainables.trial import finetune_settings
    from trainables.trial_spec import TrialSpec

    tokenizer = mbert_tokenizer()
    samples = {"pos": "ud/en_ewt-ud-dev.first200.conllu", "ner": "ner/wikiann/en/train.first1000.conllu",
               "nli": "xnli/dev-en.first500.tsv", "qa": "qa/xquad/xquad.en.first2articles.json"}
    for name, sample in samples.items():
        task = get_task(name).load()
        settings = finetune_settings(TrialSpec(model="-", task=name, strategy="baseline", seed=0,
                                               languages=("de",), data={}), xlmr=False)
        examples = task.load_examples(str(bundled_path(sample)), "en", "train", None)
        features = task.features(examples, tokenizer, settings)
        print(f"train {name}: {len(features)} sequences / {len(examples)} examples = "
              f"{len(features) / len(examples):.2f} ({sample})")
    qa = get_task("qa").load()
    questions = windows = 0
    for path in sorted(glob.glob(str(bundled_path("qa/xquad")) + "/xquad.*.json")):
        language = path.rsplit("xquad.", 1)[1][:2]
        examples = qa.load_examples(path, language, "test", None)
        questions += len(examples)
        windows += len(qa_windows(examples, tokenizer, 384, 128, None).features)
    print(f"eval qa: {windows} windows / {questions} questions = {windows / questions:.2f} (bundled XQuAD)")


if __name__ == "__main__":
    _measure()
