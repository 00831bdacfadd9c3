"""A trial's realignment corpus, per language, read lazily: sentence pairs -> words -> aligned pairs.

``language_corpora`` gives every realignment language a ``LanguageCorpus``:
iterating it reads the language's sentence pairs from the start, one at a
time (with the alignment line that goes with each, where the aligner has
one), and ``aligned(item)`` turns one of them into an ``AlignedPair`` (its
links empty when there is none). The realignment stream shuffles the raw
items and aligns them as it draws them, so that neither a corpus nor its
alignment is ever held in memory and a trial's first step does not wait
for the whole corpus. Where the links come from, per aligner:

- ``dico``: looked up pair by pair as the stream reads it (the dictionary
  is loaded once);
- ``pharaoh``: the alignment file, read line by line beside the sentences
  (one line per sentence pair, word indices of the same pre-tokenization);
- ``eflomal``, ``simalign``: computed once per corpus over its first pairs
  (eflomal: at most ``aligner_settings.max_pairs``; both: at most
  ``realignment.max_pairs``) and cached (``alignment_cache``) as one
  pharaoh line per pair, read back line by line beside the same sentences.
  The cache key holds a hash of the pairs aligned (``corpus_fingerprint``),
  which a node computes once per corpus file: reading 200,000 pairs again
  in every trial, for every language, would cost each trial seconds.

A trial loads the dictionary, and the segmenter (``pretokenization``), of
its own languages only. Before any trial, ``check_alignment_file`` holds a
user's pharaoh file against the corpus a trial pairs it with: its line
count in full, every line parsed, and the links of its first
``PHARAOH_CHECKED_PAIRS`` pairs against their words.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from trainables.errors import DataError, SpecError
from trainables.realignment.aligners import AlignmentRequest, check_aligner, dico_settings
from trainables.realignment.muse import MUSE_SOURCE, muse_dictionary
from trainables.realignment.parallel_data import ParallelCorpus, is_hub_source, iter_lines
from trainables.realignment.pretokenization import (
    DEFAULT_PRETOKENIZER, check_pretokenizer, contains_word, pretokenize, segmenter_name,
)
from trainables.realignment.word_pairs import (
    AlignedPair, BilingualDictionary, check_pharaoh_line, dictionary_links, load_muse_dictionary, loaded_links,
    parse_pharaoh_line,
)

# (index of the pair in its corpus, english, translation, its alignment line or None)
CorpusItem = tuple[int, str, str, "str | None"]

# Sentence pairs whose pharaoh links ``check_alignment_file`` checks against their words before
# any trial. Pre-tokenizing costs 5-10 us a pair (regex languages) to ~80 us (zh, ja: jieba,
# SudachiPy), so a 1M-line corpus is checked on this prefix; the trial checks every pair it reads.
PHARAOH_CHECKED_PAIRS = 20_000


def tokenized_pairs(language: str, sentences: Sequence[tuple[str, str]],
                    pretokenizer: str = DEFAULT_PRETOKENIZER) -> list[tuple[list[str], list[str]]]:
    """Both sides of every sentence pair split into words (English first)."""
    check_pretokenizer(pretokenizer)
    return [(pretokenize(english, "en", pretokenizer), pretokenize(translation, language, pretokenizer))
            for english, translation in sentences]


def dictionary_path(language: str, dictionaries: dict[str, str] | None) -> Path | None:
    """The dictionary file of ``language``: a local path, or MUSE's (``muse``) fetched into the cache."""
    if not dictionaries or language not in dictionaries:
        return None
    if dictionaries[language] == MUSE_SOURCE:
        return muse_dictionary(language)
    return Path(dictionaries[language])


def corpus_fingerprint(sentences: ParallelCorpus) -> str:
    """``sentences.fingerprint()``, remembered for local files by their (path, size, mtime) and the limit.

    The record lives under ``$ALIGNFREEZE_CACHE/fingerprints`` (as
    ``artifacts.cached_file_fingerprint``'s), shared by a node's processes.
    """
    from trainables.artifacts import atomic_write_text, cache_root, content_key

    source = sentences.source
    if is_hub_source(source):
        return sentences.fingerprint()    # a name, read nothing
    try:
        paths = [Path(p).resolve() for p in ((source["source"], source["target"]) if isinstance(source, dict)
                                              else (source,))]
        stamp = ["parallel-prefix", [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths],
                 sentences.limit]
    except (OSError, TypeError, KeyError):
        return sentences.fingerprint()    # reading it says what is wrong with it
    record = cache_root() / "fingerprints" / content_key(stamp)
    try:
        value = record.read_text(encoding="utf-8").strip()
    except OSError:
        value = ""
    if not re.fullmatch(r"[0-9a-f]{16}:[0-9]+", value):
        value = sentences.fingerprint()
        try:
            atomic_write_text(record, value + "\n")
        except OSError:   # a read-only cache: hash again next time
            pass
    return value


class LanguageCorpus:
    """One language's realignment corpus: raw items in corpus order, aligned one at a time.

    ``links_path``: a file of one pharaoh line per sentence pair read
    beside the sentences; ``checked_links``: filter its links as the
    reference loads an alignment file (``loaded_links``) and check their
    bounds (a user's file), or take them as stored (the cache's own).
    Without ``links_path`` the links come from ``dictionary``.
    """

    def __init__(self, language: str, sentences: ParallelCorpus, pretokenizer: str = DEFAULT_PRETOKENIZER, *,
                 dictionary: BilingualDictionary | None = None, lowercase_fallback: bool = False,
                 links_path: Path | None = None, checked_links: bool = True,
                 info: dict[str, Any] | None = None):
        if dictionary is None and links_path is None:
            raise SpecError(f"realignment language {language!r}: no dictionary and no alignment file")
        self.language = language
        self.sentences = sentences
        self.pretokenizer = pretokenizer
        self.dictionary = dictionary
        self.lowercase_fallback = lowercase_fallback
        self.links_path = links_path
        self.checked_links = checked_links
        # what a result records about this corpus (the stream adds what it read)
        self.info = {"pretokenizer": pretokenizer, "segmenter": segmenter_name(language), **(info or {})}

    def __iter__(self) -> Iterator[CorpusItem]:
        if self.links_path is None:
            for index, english, translation in self.sentences:
                yield index, english, translation, None
            return
        link_lines = iter_lines(self.links_path)
        count = 0
        for index, english, translation in self.sentences:
            line = next(link_lines, None)
            if line is None:
                raise DataError(f"{count} alignment lines for more sentence pairs of "
                                f"{self.sentences.location}", self.links_path)
            count += 1
            yield index, english, translation, line
        limited = self.sentences.limit is not None and count >= self.sentences.limit
        if not limited and next(link_lines, None) is not None:
            raise DataError(f"more alignment lines than the {count} sentence pairs of "
                            f"{self.sentences.location}", self.links_path)

    def aligned(self, item: CorpusItem) -> AlignedPair:
        """The words and links of one item (no link: empty ``links``)."""
        index, english, translation, line = item
        source = pretokenize(english, "en", self.pretokenizer)
        target = pretokenize(translation, self.language, self.pretokenizer)
        if line is None:
            links = loaded_links(dictionary_links(source, target, self.dictionary, self.lowercase_fallback),
                                 source, target)
        else:
            links = parse_pharaoh_line(line, self.links_path, index + 1)
            if self.checked_links:
                for i, j in links:
                    if i >= len(source) or j >= len(target):
                        raise DataError(f"link {i}-{j} outside a sentence pair of {len(source)}x{len(target)} "
                                        f"words", self.links_path, index + 1)
                links = loaded_links(links, source, target)
        return AlignedPair(self.language, tuple(source), tuple(target), tuple(links))


def _cached_corpus(language: str, sentences: ParallelCorpus, aligner: str, request: AlignmentRequest,
                   progress: Callable[[str], None] | None, root: Path | None) -> LanguageCorpus:
    """eflomal / simalign: the corpus's links computed once (over its first pairs) and cached."""
    from trainables.realignment.alignment_cache import cached_links

    if aligner == "eflomal":
        from trainables.realignment.eflomal_aligner import resolved_settings

        cap = resolved_settings(request.settings)["max_pairs"]
        sentences = ParallelCorpus(language, sentences.source, min(cap, sentences.limit or cap))

    def tokenized():
        if progress is not None:
            progress(f"aligning the realignment corpus of {language} with {aligner} "
                     f"(once per corpus; cached)" + (f": its first {sentences.limit} sentence pairs at most"
                                                     if sentences.limit else ""))
        for _, english, translation in sentences:
            yield (pretokenize(english, "en", request.pretokenizer),
                   pretokenize(translation, language, request.pretokenizer))

    cached = cached_links(aligner, request, corpus_fingerprint(sentences), tokenized=tokenized, root=root,
                          progress=progress)
    meta = cached.meta
    return LanguageCorpus(language, sentences, request.pretokenizer, links_path=cached.links_path,
                          checked_links=False,
                          info={"alignment_key": cached.key, "aligned_lines": int(meta["lines"]),
                                "aligned_skipped": int(meta["skipped"]), "aligned_pairs": int(meta["pairs"])})


def language_corpora(languages: Sequence[str], parallel: dict[str, Any], aligner: str, *,
                     dictionaries: dict[str, str] | None = None,
                     alignments: dict[str, str] | None = None,
                     aligner_settings: dict[str, Any] | None = None,
                     max_pairs: int | None = None, encoder: Any = None,
                     pretokenizer: str = DEFAULT_PRETOKENIZER,
                     progress: Callable[[str], None] | None = None,
                     root: Path | None = None) -> dict[str, LanguageCorpus]:
    """The realignment corpus of every language, in the order given, ready to be streamed.

    Nothing is read here but dictionaries, and for ``eflomal`` and
    ``simalign`` the first pairs of a corpus that the cache does not hold
    yet (``progress`` receives a line as that starts).
    """
    check_aligner(aligner)
    check_pretokenizer(pretokenizer)
    corpora = {}
    for language in languages:
        sentences = ParallelCorpus(language, parallel[language], max_pairs)
        if aligner == "dico":
            settings = dico_settings(aligner_settings)
            path = dictionary_path(language, dictionaries)
            if path is None:
                raise SpecError(f"aligner 'dico' needs a dictionary for language {language!r}")
            corpora[language] = LanguageCorpus(
                language, sentences, pretokenizer,
                dictionary=load_muse_dictionary(path, symmetric=settings["symmetric"]),
                lowercase_fallback=settings["lowercase_fallback"])
        elif aligner == "pharaoh":
            if not alignments or language not in alignments:
                raise SpecError(f"aligner 'pharaoh' needs an alignment file for language {language!r}")
            corpora[language] = LanguageCorpus(language, sentences, pretokenizer,
                                               links_path=Path(alignments[language]))
        else:
            request = AlignmentRequest(language=language, tokenized=(), settings=dict(aligner_settings or {}),
                                       encoder=encoder, pretokenizer=pretokenizer)
            corpora[language] = _cached_corpus(language, sentences, aligner, request, progress, root)
    return corpora


def realignment_pairs(languages: Sequence[str], parallel: dict[str, Any], aligner: str, *,
                      dictionaries: dict[str, str] | None = None,
                      alignments: dict[str, str] | None = None,
                      aligner_settings: dict[str, Any] | None = None,
                      max_pairs: int | None = None, encoder: Any = None,
                      pretokenizer: str = DEFAULT_PRETOKENIZER,
                      report: dict[str, Any] | None = None) -> dict[str, list[AlignedPair]]:
    """Aligned pairs of every realignment language, in corpus order, as lists (small corpora, tools).

    The same path as a trial's stream (``language_corpora``), read whole
    and unshuffled. ``report``, when given, receives per language the
    pre-tokenizer and segmenter, the sentence pairs read, those skipped (a
    side without words) and those with a link.
    """
    result = {}
    for language, corpus in language_corpora(
            languages, parallel, aligner, dictionaries=dictionaries, alignments=alignments,
            aligner_settings=aligner_settings, max_pairs=max_pairs, encoder=encoder,
            pretokenizer=pretokenizer).items():
        pairs, lines, skipped = [], 0, 0
        for item in corpus:
            pair = corpus.aligned(item)
            lines += 1
            skipped += not (contains_word(pair.source_words) and contains_word(pair.target_words))
            if pair.links:
                pairs.append(pair)
        result[language] = pairs
        if report is not None:
            report[language] = {**corpus.info, "lines": lines, "skipped": skipped, "pairs": len(pairs)}
    return result


def check_word_links(language: str, source: Any, aligner: str, lookahead: int, *,
                     dictionaries: dict[str, str] | None = None, alignments: dict[str, str] | None = None,
                     aligner_settings: dict[str, Any] | None = None, max_pairs: int | None = None,
                     pretokenizer: str = DEFAULT_PRETOKENIZER) -> None:
    """Refuse a corpus none of whose first ``lookahead`` sentence pairs has a word link.

    For the aligners whose links are known without the model (``dico``,
    ``pharaoh``), so that a grid fails before its first trial; the stream
    checks the same (on its shuffled order, after the cut at
    ``max_length``) in every trial.
    """
    if aligner not in ("dico", "pharaoh"):
        raise SpecError(f"aligner {aligner!r}: its links are not known before a trial")
    corpus = language_corpora([language], {language: source}, aligner, dictionaries=dictionaries,
                              alignments=alignments, aligner_settings=aligner_settings, max_pairs=max_pairs,
                              pretokenizer=pretokenizer)[language]
    read = 0
    for item in corpus:
        read += 1
        if corpus.aligned(item).links:
            return
        if read >= lookahead:
            raise SpecError(f"realignment language {language}: no usable aligned sentence pair among the first "
                            f"{read} sentence pairs read (none with a word link from {aligner})")
    if not read:
        raise DataError(f"realignment language {language}: its parallel data holds no sentence pair",
                        corpus.sentences.location)
    raise SpecError(f"realignment language {language}: no usable aligned sentence pair among its {read} "
                    f"sentence pair(s) (none with a word link from {aligner})")


def check_alignment_file(language: str, source: Any, path: str | Path, *, max_pairs: int | None = None,
                         pretokenizer: str = DEFAULT_PRETOKENIZER,
                         checked_pairs: int = PHARAOH_CHECKED_PAIRS) -> None:
    """Refuse, before any trial, a pharaoh file a trial pairing it with ``source`` would fail on.

    Streamed beside the sentence pairs, as ``LanguageCorpus`` reads them:
    a line for every pair the trial reads (``max_pairs`` at most), no line
    beyond the corpus when the trial reads it whole, every line well formed
    (all read), and every link of the first ``checked_pairs`` pairs inside
    its pair's words, pre-tokenized with ``pretokenizer``. Line N of the
    file goes with the corpus's N-th sentence pair (a TSV's blank lines are
    no pair). An alignment file made for the first ``max_pairs`` pairs
    (``alignfreeze align --max-pairs``) is accepted, as the trial accepts it.
    """
    check_pretokenizer(pretokenizer)
    path = Path(path)
    if not path.is_file():
        raise DataError("alignment file not found", path)
    sentences = ParallelCorpus(language, source, max_pairs)
    lines = iter_lines(path)
    pairs = iter(sentences)
    read = 0
    for _, english, translation in pairs:
        line = next(lines, None)
        if line is None:
            total = read + 1 + sum(1 for _ in pairs)
            which = f"first {total} sentence pairs (realignment.max_pairs)" if total == max_pairs \
                else f"{total} sentence pairs"
            raise DataError(f"{read} alignment line(s) for the {which} of {sentences.location}: pair "
                            f"{read + 1} onwards has none", path, read + 1)
        read += 1
        if read > checked_pairs:
            check_pharaoh_line(line, path, read)
            continue
        links = parse_pharaoh_line(line, path, read)
        if not links:
            continue
        source_words = pretokenize(english, "en", pretokenizer)
        target_words = pretokenize(translation, language, pretokenizer)
        for i, j in links:
            if i >= len(source_words) or j >= len(target_words):
                raise DataError(f"link {i}-{j} outside sentence pair {read}, of {len(source_words)}x"
                                f"{len(target_words)} words (pretokenizer {pretokenizer})", path, read)
    whole = max_pairs is None or read < max_pairs
    extra = 0
    for number, line in enumerate(lines, read + 1):
        check_pharaoh_line(line, path, number)
        extra += 1
    if whole and extra:
        raise DataError(f"{read + extra} alignment lines for the {read} sentence pairs of "
                        f"{sentences.location}: line {read + 1} onwards has no sentence pair", path, read + 1)
