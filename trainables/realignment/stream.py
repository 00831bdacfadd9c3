"""Endless realignment batches from corpora read lazily: shuffled per language, interleaved, restarted.

Each language's corpus is a stream: its items pass through a seeded
shuffle buffer (``SHUFFLE_BUFFER`` = 10,000 items, as the reference's
``IterableDataset.shuffle(seed, buffer_size=10_000)``), then are aligned
and encoded one at a time; a pair left without a link once its sides are
cut at ``max_length`` sub-words is dropped there, as the reference drops
it. Memory holds the buffers, never a corpus, and the first batch waits
for one buffer per language, whatever the corpus size.

Languages are interleaved round-robin (``realignment.interleaving``):

- ``shortest`` (default; the reference's ``interleave_datasets``, whose
  ``stopping_strategy`` is ``first_exhausted``): a pass ends as soon as one
  language has given its last pair; then every language restarts at its
  first pair, in the same shuffled order (the reference never changes its
  shuffle's epoch, so each restart replays the first pass). A language
  longer than the shortest is read up to about the shortest's length
  plus the buffer.
- ``all_pairs``: a language that runs out leaves the round until every
  language has given every pair; each pass reshuffles (seed, pass).

Batches run across passes (every batch holds ``batch_size`` pairs); the
same seed gives the same batches, and ``skip(n)`` reaches batch n by
drawing the n batches before it without collating them.

``realignment.batching``: ``random`` (default; the reference's) takes the
pairs in stream order; ``length_grouped`` reads a window of
``length_grouping.WINDOW_BATCHES`` batches of pairs at a time, groups
pairs of similar length (the longer side's) into its batches and draws
them in an order seeded by (seed, window): far less padding, the same
pairs, memory for one window.
"""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

from trainables import length_grouping
from trainables.errors import DataError, SpecError
from trainables.length_grouping import check_batching, grouped_batches
from trainables.realignment.batches import (EncodedPair, RealignmentBatch, WordPieces, collate_pairs,
                                            encode_pair)
from trainables.realignment.pretokenization import contains_word
from trainables.realignment.word_pairs import AlignedPair
from trainables.tasks.token_classification import special_tokens

if TYPE_CHECKING:
    from trainables.realignment.realigner import RealignSettings

SHUFFLE_BUFFER = 10_000     # items per language, as the reference
LOOKAHEAD_PAIRS = 10_000    # sentence pairs read without a usable one before a language is refused
INTERLEAVINGS = ("shortest", "all_pairs")

T = TypeVar("T")


def check_interleaving(value: Any) -> str:
    if value not in INTERLEAVINGS:
        raise SpecError(f"realignment.interleaving must be one of {', '.join(INTERLEAVINGS)}, got {value!r}")
    return value


def buffer_shuffled(items: Iterable[T], buffer_size: int, rng: random.Random) -> Iterator[T]:
    """``items`` in a random order drawn through a buffer of ``buffer_size`` (all of them when fewer)."""
    buffer: list[T] = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        index = rng.randrange(buffer_size)
        yield buffer[index]
        buffer[index] = item
    rng.shuffle(buffer)
    yield from buffer


class _Lookahead:
    """An iterator that can tell whether it has a next item (by reading it ahead)."""

    _EMPTY = object()

    def __init__(self, iterator: Iterator[Any]):
        self.iterator = iterator
        self._next: Any = self._EMPTY

    def has_next(self) -> bool:
        if self._next is self._EMPTY:
            self._next = next(self.iterator, self._EMPTY)
        return self._next is not self._EMPTY

    def __next__(self) -> Any:
        if not self.has_next():
            raise StopIteration
        item, self._next = self._next, self._EMPTY
        return item

    def __iter__(self) -> "_Lookahead":
        return self


def interleave(streams: Mapping[str, Iterable[T]], interleaving: str = "all_pairs") -> Iterator[T]:
    """One pass of round-robin over the streams, in the order given (see the module docstring)."""
    check_interleaving(interleaving)
    iterators = [s if isinstance(s, _Lookahead) else _Lookahead(iter(s)) for s in streams.values()]
    if interleaving == "shortest":
        if not all(iterator.has_next() for iterator in iterators):
            return
        while True:
            for iterator in iterators:
                yield next(iterator)
                if not iterator.has_next():    # the first language used up ends the pass
                    return
    active = [iterator for iterator in iterators if iterator.has_next()]
    while active:
        for iterator in list(active):
            yield next(iterator)
            if not iterator.has_next():
                active.remove(iterator)


class _PairList:
    """A list of aligned pairs as a corpus (tests, small tools)."""

    def __init__(self, pairs: Sequence[AlignedPair]):
        self.pairs = pairs
        self.info: dict[str, Any] = {}

    def __iter__(self) -> Iterator[AlignedPair]:
        return iter(self.pairs)

    def aligned(self, item: AlignedPair) -> AlignedPair:
        return item


class RealignmentStream:
    """Endless batches of encoded pairs from each language's corpus (see the module docstring).

    ``corpora``: per language, a ``corpus.LanguageCorpus`` (or anything
    iterable again from its start with an ``aligned(item)`` method), or a
    list of ``AlignedPair``. A language whose corpus is empty, or gives no
    usable pair within its first ``LOOKAHEAD_PAIRS`` sentence pairs, is
    refused here, before any batch. ``report`` counts, per language, what
    the first pass has read so far (each sentence pair once):
    ``lines``, ``skipped`` (a side without words), ``pairs`` (with a link
    from the aligner), ``without_link`` (none left within ``max_length``),
    ``usable``, and ``complete`` once the whole corpus was read.
    """

    def __init__(self, corpora: Mapping[str, Any], tokenizer: Any, settings: "RealignSettings", seed: int,
                 shuffle_buffer: int = SHUFFLE_BUFFER, lookahead: int = LOOKAHEAD_PAIRS):
        self.corpora = {language: corpus if hasattr(corpus, "aligned") else _PairList(corpus)
                        for language, corpus in corpora.items()}
        self.tokenizer = tokenizer
        self.specials = special_tokens(tokenizer)
        self.max_length = settings.max_length
        self.batch_size = settings.batch_size
        self.interleaving = check_interleaving(getattr(settings, "interleaving", "shortest"))
        self.pad_token_id = tokenizer.pad_token_id
        self.batching = check_batching(getattr(settings, "batching", "random"), "realignment.batching")
        self.pieces = WordPieces(tokenizer)
        self._grouped: deque[list[EncodedPair]] = deque()   # the current window's batches still to draw
        self._windows = 0
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.lookahead = lookahead
        self.report: dict[str, dict[str, Any]] = {
            language: {**corpus.info, "lines": 0, "skipped": 0, "pairs": 0, "without_link": 0, "usable": 0,
                       "complete": False}
            for language, corpus in self.corpora.items()}
        self.batches_drawn = 0
        self.on_first_batch: Callable[[], None] | None = None   # called as the first batch is drawn
        self._first_batch_drawn = False
        self._passes = 0
        self._languages = self._language_streams(0)
        for stream in self._languages.values():   # refuse an unusable language now, not mid-training
            stream.has_next()
        self._pairs = self._all_passes()

    # ------------------------------------------------------------ counts
    @property
    def num_pairs(self) -> int:
        """Usable pairs read so far (the first pass, every language)."""
        return sum(counts["usable"] for counts in self.report.values())

    @property
    def pairs_without_link(self) -> dict[str, int]:
        """Per language, pairs dropped so far: no link left within ``max_length`` sub-words."""
        return {language: counts["without_link"] for language, counts in self.report.items()}

    # ----------------------------------------------------------- streams
    def _shuffle_rng(self, language: str, pass_index: int) -> random.Random:
        # "shortest" replays one order at every pass (the reference); "all_pairs" reshuffles
        salt = f"{self.seed}/{language}" + (f"/{pass_index}" if self.interleaving == "all_pairs" else "")
        return random.Random(salt)

    def _language_streams(self, pass_index: int) -> dict[str, _Lookahead]:
        return {language: _Lookahead(self._encoded(language, pass_index)) for language in self.corpora}

    def _encoded(self, language: str, pass_index: int) -> Iterator[EncodedPair]:
        corpus = self.corpora[language]
        first_pass = pass_index == 0
        counts = self.report[language]
        for item in buffer_shuffled(corpus, self.shuffle_buffer, self._shuffle_rng(language, pass_index)):
            pair = corpus.aligned(item)
            encoded = (encode_pair(self.tokenizer, pair, self.max_length, self.specials, self.pieces)
                       if pair.links else None)
            if first_pass:
                counts["lines"] += 1
                counts["skipped"] += not (contains_word(pair.source_words) and contains_word(pair.target_words))
                counts["pairs"] += bool(pair.links)
                counts["without_link"] += bool(encoded is not None and not encoded.links)
                counts["usable"] += bool(encoded is not None and encoded.links)
                if not counts["usable"] and counts["lines"] >= self.lookahead:
                    raise self._unusable(language)
            if encoded is not None and encoded.links:
                yield encoded
        if first_pass:
            counts["complete"] = True
            if not counts["usable"]:
                raise self._unusable(language)

    def _unusable(self, language: str) -> Exception:
        counts = self.report[language]
        lines, pairs = counts["lines"], counts["pairs"]
        corpus = self.corpora[language]
        if not lines:
            where = getattr(getattr(corpus, "sentences", None), "location", None)
            return DataError(f"realignment language {language}: its parallel data holds no sentence pair", where)
        read = f"its {lines} sentence pair(s)" if counts["complete"] else f"the first {lines} sentence pairs read"
        why = (f"{pairs} with a word link, none within realignment.max_length {self.max_length} sub-words"
               if pairs else "none with a word link")
        return SpecError(f"realignment language {language}: no usable aligned sentence pair among {read} ({why})")

    def _all_passes(self) -> Iterator[EncodedPair]:
        while True:
            drawn = 0
            for pair in interleave(self._languages, self.interleaving):
                drawn += 1
                yield pair
            if not drawn:     # cannot happen after a first pass that had usable pairs; never loop idle
                raise SpecError("the realignment corpora gave no usable pair in a whole pass")
            self._passes += 1
            self._languages = self._language_streams(self._passes)

    # ----------------------------------------------------------- batches
    def _draw(self) -> list[EncodedPair]:
        if self.batching == "random":
            batch = [next(self._pairs) for _ in range(self.batch_size)]
        else:
            if not self._grouped:
                self._grouped.extend(self._grouped_window())
            batch = self._grouped.popleft()
        self.batches_drawn += 1
        return batch

    def _grouped_window(self) -> list[list[EncodedPair]]:
        """The next window's pairs in batches of similar length, in an order seeded by (seed, window)."""
        pairs = [next(self._pairs) for _ in range(length_grouping.WINDOW_BATCHES * self.batch_size)]
        # a batch is padded to its longest side, English or translation
        lengths = [max(len(pair.source_ids), len(pair.target_ids)) for pair in pairs]
        rng = random.Random(f"{self.seed}/batches/{self._windows}")
        self._windows += 1
        batches = grouped_batches(range(len(pairs)), lengths, self.batch_size, lambda n: rng.sample(range(n), n))
        return [[pairs[i] for i in batch] for batch in batches]

    def next_batch(self) -> RealignmentBatch:
        if not self._first_batch_drawn:       # by next_batch only: skip() trains nothing
            self._first_batch_drawn = True
            if self.on_first_batch is not None:
                self.on_first_batch()
        return collate_pairs(self._draw(), self.pad_token_id)

    def skip(self, batches: int) -> None:
        """Advance as if ``batches`` had been drawn (resuming a run): the same pairs, not collated."""
        for _ in range(batches):
            self._draw()

    def __iter__(self) -> Iterator[RealignmentBatch]:
        while True:
            yield self.next_batch()
