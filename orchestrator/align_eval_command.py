"""``alignfreeze align-eval``: precision, recall and AER of the word aligners on gold alignments.

The scoring lives in ``trainables.realignment.alignment_eval``; this
module only reads the command line and prints the table.
"""

from __future__ import annotations

import argparse

from trainables.realignment.alignment_eval import (
    DEFAULT_SIMALIGN_MODEL, EVALUATED_ALIGNERS, evaluation_results, evaluation_table,
)

SYMMETRISATIONS = ("grow-diag-final-and", "intersection")


def add_align_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``alignfreeze align-eval``."""
    parser.add_argument("--aligner", action="extend", nargs="+", choices=EVALUATED_ALIGNERS,
                        help="aligners to evaluate (default: every in-process aligner)")
    parser.add_argument("--gold", action="extend", nargs="+", metavar="DIR_OR_NAME",
                        help="gold set: a bundled name (en-fr, ro-en, ja-en, zh-en, en-de) or a directory "
                             "of gold sets (default: every bundled set)")
    parser.add_argument("--model", metavar="MODEL",
                        help=f"encoder for simalign: a local model directory, a built-in tiny model or a "
                             f"Hub id (default: {DEFAULT_SIMALIGN_MODEL}, random weights)")
    parser.add_argument("--layer", type=int, metavar="N",
                        help="hidden layer for simalign (default: 8 of 12, same relative depth otherwise)")
    parser.add_argument("--symmetrisation", action="extend", nargs="+", choices=SYMMETRISATIONS,
                        help="eflomal symmetrisations (default: both)")


def run_align_eval(args: argparse.Namespace) -> int:
    """Evaluate the aligners and print one table; 0 on success."""
    aligners = args.aligner or list(EVALUATED_ALIGNERS)
    results = evaluation_results(aligners, args.gold, args.model, args.layer,
                                 args.symmetrisation or SYMMETRISATIONS)
    print(evaluation_table(results))
    notes = []
    if "eflomal" in aligners:
        notes.append("eflomal is trained on each gold set's own sentence pairs (100 or fewer): "
                     "expect far better figures on a real corpus; eflomal cannot be seeded, "
                     "so figures vary a little between runs.")
    if "simalign" in aligners and not args.model:
        notes.append(f"simalign ran {DEFAULT_SIMALIGN_MODEL}, random weights: real figures need a real "
                     "encoder (--model DIR).")
    for note in notes:
        print(f"note: {note}")
    return 0
