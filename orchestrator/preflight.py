"""Data preflight: read every distinct local data file of a grid once, before any trial starts.

A malformed or mismatched file fails here with file and line. Task files
(UD, WikiANN, XNLI, SQuAD/XQuAD; train, test and validation) are parsed
in full through the task's own reader, up to the trial's
``max_*_examples`` (what a trial reads); dictionaries are parsed in full;
parallel files, which can be large (OPUS-100: 1M lines), are only counted
(line-aligned pairs) or split on tabs (TSV), streaming; an empty one is
refused, and so is a language none of whose first 10,000 sentence pairs
gets a word link from a local dictionary or alignment file
(``corpus.check_word_links``). A pharaoh alignment file is held against
the corpus each trial pairs it with (``corpus.check_alignment_file``):
its lines counted and parsed in full, one line for every sentence pair
the trial reads, and the links of its first ``PHARAOH_CHECKED_PAIRS``
(20,000) pairs inside their words under the trial's ``pretokenizer``;
later links are checked by the trial as it reads them. A tagged (PoS,
NER) file with no annotated word in what a trial reads is refused: it
would train on nothing, or score NaN. Hub sources are not touched (no
network here). Validation examples that are also test examples of the
same language are warned about (held-out data that is not held out).
Model folders are checked where their config is first read
(``trainables.model_folders``, from ``models.model_num_blocks``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trainables.artifacts import canonical_json
from trainables.errors import DataError
from trainables.languages import SOURCE_LANGUAGE
from trainables.realignment.corpus import check_alignment_file, check_word_links
from trainables.realignment.muse import MUSE_SOURCE
from trainables.realignment.pretokenization import DEFAULT_PRETOKENIZER
from trainables.realignment.stream import LOOKAHEAD_PAIRS
from trainables.tasks.hub_source import is_hub
from trainables.tasks.registry import get_task
from trainables.trial_spec import TrialSpec

logger = logging.getLogger(__name__)


def is_local(location: Any) -> bool:
    """A file or directory (not a Hub dataset, not a dictionary fetched from MUSE)."""
    return isinstance(location, str) and not is_hub(location) and location != MUSE_SOURCE


def preflight_data(trials: list[TrialSpec]) -> None:
    """Raise a one-line DataError for the first unreadable local data file of ``trials``."""
    from trainables.realignment.word_pairs import load_muse_dictionary

    task_reads: dict[tuple[str, str, str, str], int | None] = {}
    parallel: dict[Any, int | None] = {}
    dictionaries: set[str] = set()
    # pharaoh files, by their pairing (language, corpus, file, pretokenizer): the most pairs a trial reads
    alignments: dict[str, int | None] = {}
    pairings: dict[str, tuple[str, Any, str, str]] = {}
    linkable: dict[str, tuple[str, Any, str, dict[str, Any]]] = {}   # checked last: the files are well formed
    for spec in trials:
        sources = [(SOURCE_LANGUAGE, "train", spec.data["train"], spec.finetune.get("max_train_examples"))]
        sources += [(language, "test", location, spec.finetune.get("max_eval_examples"))
                    for language, location in spec.data.get("eval", {}).items()]
        sources += [(language, "validation", location, spec.finetune.get("max_eval_examples"))
                    for language, location in (spec.data.get("validation") or {}).items()]
        for language, split, location, limit in sources:
            if is_local(location):
                key = (spec.task, location, language, split)
                task_reads[key] = _widest(task_reads, key, limit)
        if not spec.realigns:
            continue
        realignment = spec.realignment
        for language in realignment.get("languages", ()):
            source = realignment["parallel"][language]
            key = (source["source"], source["target"]) if isinstance(source, dict) else source
            if isinstance(source, dict) or is_local(source):
                parallel[key] = _widest(parallel, key, realignment.get("max_pairs"))
            if spec.aligner == "dico" and is_local(realignment["dictionaries"][language]):
                dictionaries.add(realignment["dictionaries"][language])
            if spec.aligner == "pharaoh":
                pairing = (language, source, realignment["alignments"][language],
                           realignment.get("pretokenizer", DEFAULT_PRETOKENIZER))
                key = canonical_json(list(pairing))
                pairings[key] = pairing
                alignments[key] = _widest(alignments, key, realignment.get("max_pairs"))
            options = _link_options(spec, language)
            if options is not None:
                linkable.setdefault(canonical_json([language, source, spec.aligner, options]),
                                    (language, source, spec.aligner, options))
    # (task, language, split) -> what its sources hold, kept only to compare validation with test
    evaluated: dict[tuple[str, str, str], list[tuple[str, list[Any]]]] = {}
    validates = any(key[3] == "validation" for key in task_reads)
    for (task, location, language, split), limit in task_reads.items():
        examples = _utf8(lambda: get_task(task).load().load_examples(location, language, split, limit),
                         location)
        _check_something_to_score(examples, task, location, split, limit)
        if validates and split != "train":
            evaluated.setdefault((task, language, split), []).append((location, examples))
    _warn_on_shared_examples(evaluated)
    for key, limit in parallel.items():
        if isinstance(key, tuple):
            counts = [_utf8(lambda path=path: _count_lines(path), path) for path in key]
            if counts[0] != counts[1]:
                raise DataError(f"parallel files differ in length: {counts[0]} lines vs "
                                f"{counts[1]} in {key[1]}", key[0])
            if not counts[0]:
                raise DataError("parallel files are empty", key[0])
        else:
            _utf8(lambda: _check_tsv(key, limit), key)
    for path in sorted(dictionaries):
        _utf8(lambda: load_muse_dictionary(path), path)
    for key, limit in alignments.items():
        language, source, path, pretokenizer = pairings[key]
        if isinstance(source, dict) or is_local(source):
            _utf8(lambda: check_alignment_file(language, source, path, max_pairs=limit,
                                               pretokenizer=pretokenizer), path)
        else:    # a corpus from the Hub: the file alone
            _utf8(lambda: _parse_alignment_file(path), path)
    for language, source, aligner, options in linkable.values():
        check_word_links(language, source, aligner, LOOKAHEAD_PAIRS, **options)


def _check_something_to_score(examples: list[Any], task: str, location: str, split: str,
                              limit: int | None) -> None:
    """Refuse tagged data without one annotated word: an accuracy over no word is NaN, not a result.

    (The task readers already refuse a file with no sentence, example or question.)
    """
    if not examples or not hasattr(examples[0], "labels"):
        return
    if any(label for example in examples for label in example.labels):
        return
    what = "every UPOS tag is '_'" if task == "pos" else "no word has a tag"
    read = f"in the first {limit} sentences read" if limit is not None and len(examples) >= limit else \
        f"in its {len(examples)} sentence(s)"
    purpose = "to train on" if split == "train" else f"to score ({split} data)"
    raise DataError(f"no annotated word {purpose}: {what} {read}", location)


def _warn_on_shared_examples(evaluated: dict[tuple[str, str, str], list[tuple[str, list[Any]]]]) -> None:
    """Warn when validation examples are also test examples of the same task and language:
    a search selecting on them would select on the test set (e.g. a directory whose test
    split falls back to the dev files validation reads)."""
    for (task, language, split), validations in evaluated.items():
        if split != "validation":
            continue
        for validation_location, validation in validations:
            for test_location, test in evaluated.get((task, language, "test"), []):
                shared = len(set(validation) & set(test))
                if shared:
                    logger.warning("%s validation data of %r (%s): %d of its %d examples are also test "
                                   "examples (%s); a search on it selects on the test set", task, language,
                                   validation_location, shared, len(validation), test_location)


def _link_options(spec: TrialSpec, language: str) -> dict[str, Any] | None:
    """What ``check_word_links`` needs for a language whose links are known from local files only."""
    realignment = spec.realignment
    source = realignment["parallel"][language]
    if spec.aligner == "dico":
        files = {"dictionaries": {language: realignment["dictionaries"][language]}}
    elif spec.aligner == "pharaoh":
        files = {"alignments": {language: realignment["alignments"][language]}}
    else:
        return None
    if not (isinstance(source, dict) or is_local(source)) or not all(is_local(f[language]) for f in files.values()):
        return None
    return {**files, "aligner_settings": realignment.get("aligner_settings"),
            "max_pairs": realignment.get("max_pairs"),
            "pretokenizer": realignment.get("pretokenizer", DEFAULT_PRETOKENIZER)}


def _widest(limits: dict[Any, int | None], key: Any, limit: int | None) -> int | None:
    """The larger of two read limits (None: everything)."""
    if key not in limits:
        return limit
    previous = limits[key]
    return None if previous is None or limit is None else max(previous, limit)


def _utf8(read: Any, path: Any) -> Any:
    try:
        return read()
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text ({error.reason})", path) from None
    except OSError as error:     # unreadable: permissions, a directory, an I/O error
        raise DataError(f"cannot read ({error.strerror or error})", path) from None


def _count_lines(path: str) -> int:
    if not Path(path).is_file():
        raise DataError("parallel file not found", path)
    with open(path, encoding="utf-8") as handle:   # text mode: the same line breaks as the reader
        return sum(1 for _ in handle)


def _check_tsv(path: str, limit: int | None) -> None:
    if not Path(path).is_file():
        raise DataError("parallel file not found", path)
    pairs = 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            fields = line.count("\t") + 1
            if fields != 2:
                raise DataError(f"expected 'english<TAB>translation', found {fields} fields", path, number)
            pairs += 1
            if limit is not None and pairs >= limit:
                return
    if not pairs:
        raise DataError("no sentence pair (english<TAB>translation line) in parallel file", path)


def _parse_alignment_file(path: str) -> None:
    from trainables.realignment.word_pairs import parse_pharaoh_line

    if not Path(path).is_file():
        raise DataError("alignment file not found", path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parse_pharaoh_line(line, path, number)
