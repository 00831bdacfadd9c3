"""Parallel sentences for realignment, read lazily: local files and OPUS-100 from the Hub.

Sources, per language (English is always the first side):

- ``{"source": PATH_EN, "target": PATH_XX}``: two line-aligned files;
- ``PATH.tsv``: ``english<TAB>translation`` a line (blank lines skipped);
- ``hub`` / ``hub:Helsinki-NLP/opus-100``: OPUS-100's ``en-xx`` training
  split, streamed (``datasets`` streaming mode: nothing is downloaded
  whole); offline, a copy prepared in the datasets cache beforehand.

A ``ParallelCorpus`` is read line by line each time it is iterated (every
pass starts again at its first pair) and is never held in memory, so its
size does not matter. A mismatch in line counts (found where the shorter
file ends), a TSV line without exactly two fields, a missing, unreadable
or non-UTF-8 file is a DataError with the file (and line).
"""

from __future__ import annotations

import hashlib
import os
from itertools import islice, zip_longest
from pathlib import Path
from typing import Any, Iterator

from trainables.errors import DataError

OPUS100 = "Helsinki-NLP/opus-100"
SentencePair = tuple[str, str]
NumberedPair = tuple[int, str, str]     # (index of the pair in its corpus, from 0; english; translation)


def _open_text(path: Path):
    if not path.is_file():
        raise DataError("parallel file not found", path)
    try:
        return path.open(encoding="utf-8")
    except OSError as error:
        raise DataError(f"cannot read parallel file ({error.strerror or error})", path) from None


def iter_lines(path: str | Path) -> Iterator[str]:
    """The lines of a text file, without their line break, one at a time."""
    path = Path(path)
    with _open_text(path) as handle:
        try:
            for line in handle:
                yield line.rstrip("\n").rstrip("\r")
        except UnicodeDecodeError as error:
            raise DataError(f"not UTF-8 text ({error.reason})", path) from None
        except OSError as error:
            raise DataError(f"cannot read parallel file ({error.strerror or error})", path) from None


def iter_line_aligned(source: str | Path, target: str | Path) -> Iterator[SentencePair]:
    """Pairs of two line-aligned files; a DataError where one file ends before the other."""
    source_lines, target_lines = iter_lines(source), iter_lines(target)
    count = 0
    for english, translation in zip_longest(source_lines, target_lines):
        if english is None or translation is None:
            # count what is left of the longer file, for a message with both lengths
            source_count = count + (english is not None) + sum(1 for _ in source_lines)
            target_count = count + (translation is not None) + sum(1 for _ in target_lines)
            raise DataError(f"parallel files differ in length: {source_count} lines vs "
                            f"{target_count} in {target}", source)
        count += 1
        yield english, translation


def iter_tsv(path: str | Path) -> Iterator[SentencePair]:
    """Pairs of an ``english<TAB>translation`` file; blank lines are skipped."""
    for number, line in enumerate(iter_lines(path), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(f"expected 'english<TAB>translation', found {len(fields)} fields", path, number)
        yield fields[0], fields[1]


def opus100_dataset(source: str, language: str) -> tuple[str, str, str]:
    """(dataset id, config, split) of a ``hub`` / ``hub:<id>`` parallel source for ``language``."""
    dataset_id = OPUS100 if source == "hub" else source[len("hub:"):]
    return dataset_id, "-".join(sorted(["en", language])), "train"


def _offline() -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def is_hub_source(source: Any) -> bool:
    return isinstance(source, str) and (source == "hub" or source.startswith("hub:"))


class ParallelCorpus:
    """The sentence pairs of one language, read lazily; iterating again restarts at the first pair.

    ``limit``: read at most that many pairs (``realignment.max_pairs``).
    """

    def __init__(self, language: str, source: Any, limit: int | None = None):
        self.language = language
        self.source = source
        self.limit = limit
        self._hub_stream: Any = None     # the streamed Hub split, opened on the first pass

    @property
    def location(self) -> Any:
        """What an error names: the file (the target file of a line-aligned pair) or the Hub dataset."""
        if isinstance(self.source, dict):
            return self.source["target"]
        if is_hub_source(self.source):
            dataset_id, config, split = opus100_dataset(self.source, self.language)
            return f"{dataset_id} (config {config}, split {split})"
        return self.source

    def __iter__(self) -> Iterator[NumberedPair]:
        for index, (english, translation) in enumerate(islice(self._pairs(), self.limit)):
            yield index, english, translation

    def _pairs(self) -> Iterator[SentencePair]:
        if isinstance(self.source, dict):
            return iter_line_aligned(self.source["source"], self.source["target"])
        if is_hub_source(self.source):
            return self._hub_pairs()
        return iter_tsv(self.source)

    def _hub_pairs(self) -> Iterator[SentencePair]:
        from trainables.hub import load_hub_split

        dataset_id, config, split = opus100_dataset(self.source, self.language)
        if self._hub_stream is None:
            try:
                self._hub_stream = load_hub_split(dataset_id, config, split, streaming=True)
            except DataError as streaming_error:
                if not _offline():
                    raise
                # offline (a cluster node): a copy prepared in the datasets cache beforehand,
                # memory-mapped and read row by row, does as well as the stream
                try:
                    self._hub_stream = load_hub_split(dataset_id, config, split)
                except DataError:
                    raise streaming_error from None
        rows = iter(self._hub_stream)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except Exception as error:   # a connection lost mid-stream: one line, as at load time
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise DataError(f"cannot read Hub dataset {dataset_id} (config {config}): {first[:200]}; "
                                f"give a local path instead") from None
            yield row["translation"]["en"], row["translation"][self.language]

    def fingerprint(self) -> str:
        """A content key of the pairs a pass reads (a Hub split: its id, config and limit).

        Local files are hashed as read, up to ``limit`` pairs, so the key
        of a corpus prefix does not depend on what follows it.
        """
        if is_hub_source(self.source):
            return "hub:" + "/".join(opus100_dataset(self.source, self.language)) + f"[:{self.limit}]"
        digest = hashlib.sha256()
        count = 0
        for _, english, translation in self:
            digest.update(english.encode("utf-8") + b"\t" + translation.encode("utf-8") + b"\n")
            count += 1
        return f"{digest.hexdigest()[:16]}:{count}"


# ------------------------------------------- whole lists (small corpora, tools)

def read_line_aligned(source: str | Path, target: str | Path, limit: int | None = None) -> list[SentencePair]:
    return list(islice(iter_line_aligned(source, target), limit))


def read_tsv(path: str | Path, limit: int | None = None) -> list[SentencePair]:
    return list(islice(iter_tsv(path), limit))


def read_opus100(language: str, dataset_id: str = OPUS100, limit: int | None = None) -> list[SentencePair]:
    """OPUS-100 en-xx training pairs, streamed (the config name lists the two codes alphabetically)."""
    return load_parallel(language, "hub" if dataset_id == OPUS100 else f"hub:{dataset_id}", limit)


def load_parallel(language: str, source: Any, limit: int | None = None) -> list[SentencePair]:
    """Sentence pairs (english, translation) of one language from a resolved source, as a list."""
    return [(english, translation) for _, english, translation in ParallelCorpus(language, source, limit)]
