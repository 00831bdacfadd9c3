"""``alignfreeze score``: this tool's metrics on predictions made anywhere.

    alignfreeze score pos|ner PREDICTIONS.jsonl
    alignfreeze score nli PREDICTIONS.jsonl
    alignfreeze score qa DATASET.json PREDICTIONS.json [--language XX]

Prints every metric a trial reports for the task (the registry's metric
names, in its order) as one JSON object on stdout, computed by the
functions a trial uses; a figure that cannot be computed is ``null``.

Inputs:

- pos / ner: JSONL, one sentence a line: ``{"gold": [tags], "pred": [tags]}``
  of equal lengths. Tags are the task's labels (UPOS; BIO over PER, ORG,
  LOC); ``""`` marks a word without a gold tag or without a prediction,
  which is left out of the scores, as in a trial;
- nli: JSONL, ``{"gold": label, "pred": label}`` a line; a label is a name
  (entailment, neutral, contradiction) or its id 0-2;
- qa: a SQuAD v1.1 dataset JSON and a predictions JSON
  ``{question id: answer text}``, as the official evaluation script takes
  them; a question without a prediction scores 0. ``--language en``
  scores ``exact_match_paper`` after normalisation, as the reference did
  for English; any other language (the default) compares raw text.

Malformed input is one line naming the file (and line), exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from trainables.errors import DataError, SpecError, short

_FILES = {"pos": ("PREDICTIONS.jsonl",), "ner": ("PREDICTIONS.jsonl",), "nli": ("PREDICTIONS.jsonl",),
          "qa": ("DATASET.json", "PREDICTIONS.json")}


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``alignfreeze score``."""
    parser.add_argument("task", metavar="TASK", help="pos, ner, nli or qa")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="pos/ner/nli: a JSONL file of gold and predicted labels; "
                             "qa: a SQuAD v1.1 dataset JSON and a predictions JSON")
    parser.add_argument("--language", metavar="XX",
                        help="qa: language of the questions; 'en' normalises exact_match_paper as the "
                             "reference did for English (default: a target language, raw comparison)")


def run_score(args: argparse.Namespace) -> int:
    from trainables.tasks.registry import get_task

    definition = get_task(args.task)
    expected = _FILES[definition.name]
    if len(args.files) != len(expected):
        raise SpecError(f"score {definition.name} takes {len(expected)} file(s), {' '.join(expected)}; "
                        f"got {len(args.files)}")
    if args.language is not None and definition.name != "qa":
        raise SpecError("--language applies to qa only")
    paths = [Path(f) for f in args.files]
    for path in paths:
        if not path.is_file():
            raise DataError("file not found", path)
    scorers: dict[str, Callable[..., dict[str, float]]] = {
        "pos": _tagging_scores, "ner": _tagging_scores, "nli": _nli_scores, "qa": _qa_scores}
    metrics = scorers[definition.name](definition, *paths, language=args.language)
    ordered = {name: metrics[name] for name in definition.metrics}
    print(json.dumps({name: None if math.isnan(value) else value for name, value in ordered.items()}))
    return 0


# ---------------------------------------------------------------- JSONL pairs

def _jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line, each with "gold" and "pred"."""
    found = False
    with path.open(encoding="utf-8") as handle:
        for number, line in _text_lines(handle, path):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"not JSON: {error.msg} (column {error.colno})", path, number) from None
            except RecursionError:
                raise DataError("not JSON this tool reads: nested too deep", path, number) from None
            if not isinstance(record, dict):
                raise DataError('expected an object {"gold": ..., "pred": ...}', path, number)
            for key in ("gold", "pred"):
                if key not in record:
                    raise DataError(f"no {key!r} key", path, number)
            found = True
            yield number, record
    if not found:
        raise DataError("no line to score", path)


def _text_lines(handle: Any, path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a text file; a byte that is not UTF-8 is a DataError naming the line."""
    number = 0
    try:
        for number, line in enumerate(handle, 1):
            yield number, line
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text ({error.reason}): is it a JSONL file?", path, number + 1) from None


def _json_file(path: Path) -> Any:
    """The JSON document of ``path``; anything else is a one-line DataError naming it."""
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text ({error.reason}): is it a JSON file?", path) from None
    except json.JSONDecodeError as error:
        raise DataError(f"not JSON: {error.msg} (column {error.colno})", path, error.lineno) from None
    except RecursionError:
        raise DataError("not JSON this tool reads: nested too deep", path) from None


def _tagging_scores(definition: Any, path: Path, language: str | None = None) -> dict[str, float]:
    from trainables.tasks.token_classification import TaggedSentence, scored_gold

    task = definition.load()
    known = set(task.labels) | {""}
    gold: list[list[str]] = []
    predicted: list[list[str]] = []
    for number, record in _jsonl_objects(path):
        rows = []
        for key in ("gold", "pred"):
            tags = record[key]
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                raise DataError(f"{key!r} must be a list of tags (strings)", path, number)
            unknown = next((tag for tag in tags if tag not in known), None)
            if unknown is not None:
                raise DataError(f"unknown {definition.name} tag {short(unknown)} in {key!r} "
                                f"(expected one of {', '.join(task.labels)}, or \"\")", path, number)
            rows.append(tags)
        if len(rows[0]) != len(rows[1]):
            raise DataError(f"{len(rows[0])} gold tags but {len(rows[1])} predicted", path, number)
        gold.append(rows[0])
        predicted.append(rows[1])
    # as in a trial: a word without a prediction is not scored
    sentences = [TaggedSentence(("",) * len(tags), tuple(tags)) for tags in gold]
    return task.metrics(scored_gold(sentences, predicted), predicted)


def _nli_scores(definition: Any, path: Path, language: str | None = None) -> dict[str, float]:
    from trainables.tasks.nli import accuracy, nli_label

    gold: list[int] = []
    predicted: list[int] = []
    for number, record in _jsonl_objects(path):
        labels = [nli_label(record[key], path, number) for key in ("gold", "pred")]
        if None in labels:
            raise DataError(f"no {('gold', 'pred')[labels.index(None)]!r} label", path, number)
        gold.append(labels[0])
        predicted.append(labels[1])
    return {"accuracy": accuracy(gold, predicted)}


# ---------------------------------------------------------------- QA

def _qa_scores(definition: Any, dataset: Path, predictions_path: Path,
               language: str | None = None) -> dict[str, float]:
    from trainables.languages import SOURCE_LANGUAGE
    from trainables.tasks.qa import read_squad_json
    from trainables.tasks.squad_metric import qa_metrics

    gold: dict[str, tuple[str, ...]] = {}
    try:
        examples = read_squad_json(dataset, language=language or "")
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text ({error.reason}): is it a JSON file?", dataset) from None
    except RecursionError:
        raise DataError("not JSON this tool reads: nested too deep", dataset) from None
    for example in examples:
        if example.id in gold:
            raise DataError(f"question id {short(example.id)} appears twice", dataset)
        gold[example.id] = example.answers
    predictions = _json_file(predictions_path)
    if not isinstance(predictions, dict):
        raise DataError("expected an object {question id: answer text}", predictions_path)
    for question_id, answer in predictions.items():
        if not isinstance(answer, str):
            raise DataError(f"question {short(question_id)}: the answer must be a text, got {short(answer)}",
                            predictions_path)
    missing = sum(question_id not in predictions for question_id in gold)
    if missing:
        print(f"alignfreeze score: {missing} of {len(gold)} questions have no prediction and score 0",
              file=sys.stderr)
    return qa_metrics(gold, predictions, english=language == SOURCE_LANGUAGE)
