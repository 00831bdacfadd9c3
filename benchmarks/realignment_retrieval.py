"""Does realignment bring translated words together? Word retrieval before and after.

Realigns a tiny model on the first 400 bundled Tatoeba pairs of each
language (MUSE dictionary links) and measures, on the last 100 pairs,
how often an English word's nearest aligned target word (cosine, over
all aligned target words of the held-out set) is its translation.

    python benchmarks/realignment_retrieval.py [--model tiny-mbert] [--steps 300] [--freeze none]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

TATOEBA = {"fr": "fra", "de": "deu", "es": "spa", "ru": "rus"}
SPLIT = 400   # pairs 0..399 realign, 400..499 are held out


def corpus(language: str, held_out: bool):
    from trainables.bundled import bundled_path
    from trainables.realignment.aligners import AlignmentRequest, aligned_pairs
    from trainables.realignment.corpus import tokenized_pairs
    from trainables.realignment.parallel_data import read_line_aligned

    code = TATOEBA[language]
    sentences = read_line_aligned(bundled_path(f"parallel/tatoeba/tatoeba.{code}-eng.eng.first500"),
                                  bundled_path(f"parallel/tatoeba/tatoeba.{code}-eng.{code}.first500"))
    sentences = sentences[SPLIT:] if held_out else sentences[:SPLIT]
    request = AlignmentRequest(language, tokenized_pairs(language, sentences),
                               dictionary_path=bundled_path(f"dictionaries/muse/en-{language}.first3000.txt"))
    return aligned_pairs("dico", request)


def held_out_retrieval(model: str = "tiny-mbert", steps: int = 300, freeze: str = "none",
                       learning_rate: float = 2e-3, languages=tuple(TATOEBA), seed: int = 0) -> dict:
    import torch

    from trainables.freezing import frozen_parameter_names
    from trainables.models import load_encoder
    from trainables.realignment.realigner import RealignmentStream, RealignSettings, realign
    from trainables.realignment.retrieval import word_retrieval_accuracy

    torch.manual_seed(seed)
    encoder, tokenizer = load_encoder(model)
    train = {language: corpus(language, held_out=False) for language in languages}
    held_out = [pair for language in languages for pair in corpus(language, held_out=True)]
    before = word_retrieval_accuracy(encoder, tokenizer, held_out)
    settings = RealignSettings(batch_size=16, learning_rate=learning_rate, temperature=0.1)
    stream = RealignmentStream(train, tokenizer, settings, seed)
    started = time.perf_counter()
    stats = realign(encoder, stream, settings, steps, frozen_parameter_names(encoder, freeze),
                    learning_rate, torch.device("cpu"))
    after = word_retrieval_accuracy(encoder, tokenizer, held_out)
    return {"model": model, "freeze": freeze, "steps": steps, "candidates": before["retrieval_candidates"],
            "before": before["retrieval_accuracy"], "after": after["retrieval_accuracy"],
            "loss_first": stats["realign_loss_first"], "loss_last": stats["realign_loss_last"],
            "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-mbert")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--freeze", nargs="+", default=["none", "front", "back"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"{'model':<12} {'freeze':<7} {'steps':>5} {'cands':>5} {'before':>7} {'after':>7} "
          f"{'loss0':>6} {'lossN':>6} {'sec':>6}")
    for freeze in args.freeze:
        r = held_out_retrieval(args.model, args.steps, freeze)
        print(f"{r['model']:<12} {r['freeze']:<7} {r['steps']:>5} {r['candidates']:>5} {r['before']:>7.3f} "
              f"{r['after']:>7.3f} {r['loss_first']:>6.2f} {r['loss_last']:>6.2f} {r['seconds']:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
