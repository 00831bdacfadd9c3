"""``alignfreeze align``: the word pairs of a parallel corpus, to look at or to export.

    alignfreeze align --aligner dico --language fr --parallel en-fr.tsv --dictionary en-fr.txt
    alignfreeze align --aligner eflomal --language de --source en.txt --target de.txt \\
        --format pharaoh --out de.align

The sentences go through the same path as a trial's realignment corpus
(``parallel_data`` -> ``pretokenization`` -> ``aligners``), without the
cache. Output, one line per sentence pair, in input order:

- ``jsonl``: ``{"line", "en_tokens", "xx_tokens", "links"}``, the fields
  of the reference parity cases; ``line`` counts sentence pairs from 0,
  and a pair without a link has ``"links": []``;
- ``pharaoh``: ``i-j`` links (English index first, 0-based), an empty line
  where there is none. It indexes the words of this tool's pre-tokenizer
  (``--pretokenizer``), so it serves as ``realignment.alignments`` (aligner
  ``pharaoh``) of an experiment with the same parallel data, ``max_pairs``
  and ``pretokenizer``.

The file named by ``--out`` is written in one step once every pair is
aligned (an error leaves nothing behind); without ``--out`` the lines go
to stdout and a one-line summary to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from trainables.errors import DataError, SpecError, short

OUTPUT_FORMATS = ("jsonl", "pharaoh")
COMMAND_ALIGNERS = ("dico", "eflomal", "simalign")


def add_align_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``alignfreeze align``."""
    from trainables.realignment.pretokenization import DEFAULT_PRETOKENIZER, PRETOKENIZERS

    parser.add_argument("--aligner", required=True, choices=COMMAND_ALIGNERS, help="word aligner")
    parser.add_argument("--language", required=True, metavar="XX",
                        help="language of the translation side (ISO 639-1, e.g. fr); English is the other side")
    parser.add_argument("--parallel", metavar="FILE",
                        help="TSV file, english<TAB>translation a line; or 'hub' for OPUS-100 en-XX "
                             "(as a trial reads it)")
    parser.add_argument("--source", metavar="FILE", help="English sentences, one a line (with --target)")
    parser.add_argument("--target", metavar="FILE", help="translations, line-aligned with --source")
    parser.add_argument("--dictionary", metavar="FILE",
                        help="MUSE dictionary english<TAB>translation (aligner dico; 'bundled:' paths work; "
                             "'muse' fetches MUSE's en-XX dictionary into the cache)")
    parser.add_argument("--model", metavar="MODEL",
                        help="encoder for simalign: a Hub id, a local directory or a built-in tiny model")
    parser.add_argument("--pretokenizer", choices=PRETOKENIZERS, default=DEFAULT_PRETOKENIZER,
                        help=f"how sentences are split into words (default: {DEFAULT_PRETOKENIZER}, "
                             "the reference implementation's)")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="an aligner setting (as realignment.aligner_settings), e.g. symmetrisation="
                             "intersection for eflomal; repeatable")
    parser.add_argument("--max-pairs", type=int, metavar="N",
                        help="align only the first N sentence pairs (as realignment.max_pairs)")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="jsonl", help="output format")
    parser.add_argument("--out", type=Path, metavar="FILE", help="output file (default: stdout)")


def _parallel_source(args: argparse.Namespace) -> Any:
    """The parallel data as ``parallel_data.load_parallel`` takes it."""
    from trainables.bundled import resolve_location

    if args.parallel and (args.source or args.target):
        raise SpecError("give either --parallel or --source with --target, not both")
    if args.parallel:
        return resolve_location(args.parallel)        # "hub" / "hub:<id>" come back unchanged
    if not (args.source and args.target):
        raise SpecError("no parallel data: give --parallel FILE, or --source FILE and --target FILE")
    return {"source": resolve_location(args.source), "target": resolve_location(args.target)}


def _settings(items: Sequence[str]) -> dict[str, Any]:
    settings = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise SpecError(f"--setting expects KEY=VALUE, got {short(item)}")
        settings[key.strip()] = _scalar(key.strip(), value)
    return settings


def _scalar(key: str, text: str) -> Any:
    """A setting's value read as YAML reads a scalar (``true``, ``3``, ``0.2``, a word).

    Every aligner setting is a single value: a list, a mapping or an alias
    (what could expand to billions of values) is refused before it is built.
    """
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise SpecError(f"--setting {short(key)}: not a value ({getattr(error, 'problem', None) or 'invalid YAML'})") from None
    if node is None:
        return None
    if not isinstance(node, yaml.ScalarNode):
        raise SpecError(f"--setting {short(key)}: expects one value (true, a number, a word), got {short(text)}")
    return yaml.SafeLoader("").construct_object(node)


def _check(args: argparse.Namespace) -> None:
    from trainables import languages

    languages.check_language(args.language, "--language")
    if args.language == "en":
        raise SpecError("--language names the translation side: English is always the other side")
    if args.aligner == "dico" and not args.dictionary:
        raise SpecError("aligner 'dico' needs --dictionary FILE (a MUSE en-xx dictionary)")
    if args.aligner == "simalign" and not args.model:
        raise SpecError("aligner 'simalign' needs --model (the encoder whose representations it compares)")
    if args.max_pairs is not None and args.max_pairs < 1:
        raise SpecError(f"--max-pairs must be at least 1, got {args.max_pairs}")


def output_lines(tokenized: Sequence[tuple[Sequence[str], Sequence[str]]],
                 links: Sequence[Sequence[tuple[int, int]]], output_format: str) -> list[str]:
    """One output line per sentence pair (without the newline)."""
    from trainables.realignment.word_pairs import pharaoh_line

    if output_format == "pharaoh":
        return [pharaoh_line(pair_links) for pair_links in links]
    return [json.dumps({"line": number, "en_tokens": list(src), "xx_tokens": list(tgt),
                        "links": [[i, j] for i, j in pair_links]}, ensure_ascii=False)
            for number, ((src, tgt), pair_links) in enumerate(zip(tokenized, links))]


def run_align(args: argparse.Namespace) -> int:
    """Align the corpus and write its word pairs; 0 on success."""
    from trainables.artifacts import atomic_write_text
    from trainables.bundled import resolve_location
    from trainables.realignment.aligners import AlignmentRequest, alignment_links
    from trainables.realignment.corpus import dictionary_path, tokenized_pairs
    from trainables.realignment.muse import MUSE_SOURCE
    from trainables.realignment.parallel_data import load_parallel

    from orchestrator.results import check_output_file

    _check(args)
    if args.out is not None:      # refused before anything is aligned
        check_output_file(args.out)
    settings = _settings(args.setting)
    source = _parallel_source(args)
    dictionary = None
    if args.aligner == "dico":
        dictionary = (dictionary_path(args.language, {args.language: MUSE_SOURCE})
                      if args.dictionary == MUSE_SOURCE else Path(resolve_location(args.dictionary)))
    sentences = load_parallel(args.language, source, args.max_pairs)
    tokenized = tokenized_pairs(args.language, sentences, args.pretokenizer)
    encoder = None
    if args.aligner == "simalign":
        from trainables.models import load_encoder

        encoder = load_encoder(args.model)
    request = AlignmentRequest(args.language, tokenized, dictionary_path=dictionary, settings=settings,
                               encoder=encoder, pretokenizer=args.pretokenizer)
    try:
        links = alignment_links(args.aligner, request)
    except UnicodeDecodeError as error:    # the dictionary: the one file an aligner reads here
        raise DataError(f"not UTF-8 text ({error.reason})", dictionary) from None
    text = "".join(line + "\n" for line in output_lines(tokenized, links, args.format))
    if args.out is not None:
        try:
            atomic_write_text(args.out, text)
        except OSError as error:     # a read-only disk (root passes the access check), a full one
            raise DataError(f"cannot be written ({error.strerror or type(error).__name__})", args.out) from None
    else:
        sys.stdout.write(text)
    print(f"alignfreeze align: {len(tokenized)} sentence pairs, {sum(1 for pair in links if pair)} with links, "
          f"{sum(len(pair) for pair in links)} links ({args.aligner}, pretokenizer {args.pretokenizer})"
          + (f" -> {args.out}" if args.out is not None else ""), file=sys.stderr)
    return 0
