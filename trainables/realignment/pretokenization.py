"""Pre-tokenization of sentences into words before word alignment.

Word pairs (dictionary lookups, alignment links) are defined over words,
so both sides of a parallel sentence are split into words first, always
with this module, and the realignment loss later maps each word to its
first sub-word. Two pre-tokenizers (``PRETOKENIZERS``, the setting
``realignment.pretokenizer``):

``reference`` (default) reproduces the AlignFreeze reference
implementation, the text as read (no Unicode normalisation):

- every language but zh / ja / th: the regex ``\\w+|[^\\w\\s]+`` (Python
  ``re``). Python's ``\\w`` leaves out combining marks, so Devanagari or
  Thai vowel signs become tokens of their own ("कमरा" -> "कमर", "ा");
- ``zh``: jieba, called the way the reference called its Chinese
  segmenter: the line is stripped and cut at every "。", each non-blank
  piece is segmented and the "。" are put back as words;
- ``ja``: SudachiPy, core dictionary, split mode A, surface forms (the
  reference used GiNZA, which is unavailable; its parity cases use this);
- ``th``: PyThaiNLP ``word_tokenize``, its default ``newmm`` engine.

``unicode`` is this tool's own rule: the text is NFC-normalised; a word is
a maximal run of letters, digits and combining marks, so that words of
Indic and Thai scripts stay whole, and every other non-space character is
a word of its own; zh / ja / th use the same segmenters on the whole line.

Either way a word never holds whitespace: the reference wrote its words
joined by spaces and split them again, so a whitespace-only token
vanishes and a token with inner spaces is cut there. A segmenter is
imported and its dictionary loaded (whole, at once) the first time a
sentence of its language is pre-tokenized, once per process: a trial
without zh, ja or th never imports jieba, SudachiPy or PyThaiNLP (each
costs 70-80 MB and up to a second); ``segmenter_load_seconds`` says how
long the loading took. ``segmenter_name`` (recorded with the word pairs
and part of their cache key, beside the pre-tokenizer's name) names the
tool, its version and its dictionary.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import unicodedata
from importlib import metadata
from typing import Callable, Iterable

from trainables.errors import SpecError, unknown_name

PRETOKENIZERS = ("reference", "unicode")
DEFAULT_PRETOKENIZER = "reference"

# The reference's RegexTokenizer rule.
_REFERENCE_WORD = re.compile(r"\w+|[^\w\s]+", re.UNICODE)

# \w in Python's re covers letters and digits of every script, but not
# combining marks (Devanagari vowel signs, Thai tone marks), which must stay
# inside their word.
_UNICODE_WORD = re.compile(r"(?:\w|[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u0610-\u061a\u064b-\u065f"
                           r"\u0670\u06d6-\u06ed\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963"
                           r"\u0981-\u0983\u09bc-\u09d7\u0b82-\u0bcd\u0e31\u0e34-\u0e3a\u0e47-\u0e4e])+"
                           r"|[^\w\s]", re.UNICODE)

# language -> segmenter kind; every other language uses a regex rule.
SEGMENTERS: dict[str, str] = {"zh": "jieba", "ja": "sudachipy", "th": "pythainlp"}

SUDACHI_DICTIONARY = "core"
SUDACHI_MODE = "A"
THAI_ENGINE = "newmm"
CHINESE_FULL_STOP = "。"


def check_pretokenizer(name: object) -> str:
    if name not in PRETOKENIZERS:
        raise unknown_name("pretokenizer", name, PRETOKENIZERS)
    return str(name)


def regex_words(text: str, pretokenizer: str = DEFAULT_PRETOKENIZER) -> list[str]:
    """Split ``text`` into words with the regex rule of ``pretokenizer``."""
    if check_pretokenizer(pretokenizer) == "unicode":
        return _UNICODE_WORD.findall(unicodedata.normalize("NFC", text))
    return _REFERENCE_WORD.findall(text)


@functools.lru_cache(maxsize=None)   # each lookup scans the installed distributions
def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


def segmenter_name(language: str) -> str:
    """The name of the segmenter used for ``language`` (recorded with pairs).

    ``regex``, ``jieba-0.42.1``, ``sudachipy-0.7.0/core-20261015/A`` or
    ``pythainlp-5.4.0/newmm``: a change of tool, version, dictionary or
    mode changes the words, hence the name (and the alignment cache key).
    """
    kind = SEGMENTERS.get(language)
    if kind == "jieba":
        return f"jieba-{_version('jieba')}"
    if kind == "sudachipy":
        return (f"sudachipy-{_version('sudachipy')}/{SUDACHI_DICTIONARY}-"
                f"{_version('sudachidict_core')}/{SUDACHI_MODE}")
    if kind == "pythainlp":
        return f"pythainlp-{_version('pythainlp')}/{THAI_ENGINE}"
    return "regex"


def _missing(kind: str, language: str, package: str) -> SpecError:
    return SpecError(f"pre-tokenization of {language!r} needs {kind}: install the "
                     f"'{package}' package (a dependency of alignfreeze)")


_load_seconds: dict[str, float] = {}    # segmenter kind -> seconds its loading took


def segmenter_load_seconds() -> float:
    """Seconds this process has spent loading segmenters (imports and dictionaries) so far."""
    return sum(_load_seconds.values())


@functools.lru_cache(maxsize=None)
def segmenter(kind: str) -> Callable[[str], Iterable[str]]:
    """The segmenting function of ``kind``, loaded (with its dictionary) once per process."""
    started = time.perf_counter()
    segment = _load_segmenter(kind)
    _load_seconds[kind] = time.perf_counter() - started
    return segment


def _load_segmenter(kind: str) -> Callable[[str], Iterable[str]]:
    if kind == "jieba":
        try:
            import jieba
        except ImportError:
            raise _missing("jieba", "zh", "jieba") from None
        jieba.setLogLevel(logging.WARNING)   # silence "Building prefix dict ..." on stderr
        # A private instance with the default dictionary (what jieba.lcut
        # uses): words another library adds to jieba's global dictionary
        # must not change our segmentation.
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()    # its dictionary now, not inside the first sentence
        return lambda text: tokenizer.lcut(text, HMM=True)
    if kind == "sudachipy":
        try:
            from sudachipy import Dictionary, SplitMode
        except ImportError:
            raise _missing("SudachiPy", "ja", "sudachipy") from None
        try:
            tokenizer = Dictionary(dict=SUDACHI_DICTIONARY).tokenizer(mode=getattr(SplitMode, SUDACHI_MODE))
        except Exception as error:    # sudachipy raises its own error when the dictionary is absent
            raise SpecError(f"SudachiPy could not load its {SUDACHI_DICTIONARY!r} dictionary "
                            f"(install 'sudachidict_core'): {error}") from None
        return lambda text: [m.surface() for m in tokenizer.tokenize(text)]
    if kind == "pythainlp":
        try:
            from pythainlp.tokenize import word_tokenize
        except ImportError:
            raise _missing("PyThaiNLP", "th", "pythainlp") from None
        word_tokenize("ก", engine=THAI_ENGINE)    # its dictionary now, not inside the first sentence
        return lambda text: word_tokenize(text, engine=THAI_ENGINE)
    raise SpecError(f"unknown segmenter {kind!r}; known: {', '.join(sorted(set(SEGMENTERS.values())))}")


def _chinese_reference(text: str) -> list[str]:
    """jieba as the reference's Chinese segmenter wrapper called its tool."""
    segment = segmenter("jieba")
    tokens: list[str] = []
    for index, piece in enumerate(text.strip().split(CHINESE_FULL_STOP)):
        if index > 0:
            tokens.append(CHINESE_FULL_STOP)
        if piece.strip():
            tokens.extend(segment(piece))
    return tokens


def pretokenize(text: str, language: str, pretokenizer: str = DEFAULT_PRETOKENIZER) -> list[str]:
    """Words of ``text`` in ``language`` under ``pretokenizer`` (see the module docstring)."""
    kind = SEGMENTERS.get(language)
    if kind is None:
        return regex_words(text, pretokenizer)
    if check_pretokenizer(pretokenizer) == "unicode":
        text = unicodedata.normalize("NFC", text)
    if not text.strip():
        return []
    if kind == "jieba" and pretokenizer == "reference":
        tokens = _chinese_reference(text)
    else:
        tokens = segmenter(kind)(text)
    # split() both drops whitespace-only tokens and cuts a token at inner spaces.
    return [word for token in tokens for word in token.split()]


def contains_word(words: Iterable[str]) -> bool:
    """True when some token holds a letter or a digit (not only punctuation).

    An aligner skips (and counts) a sentence pair when a side has no word.
    """
    return any(ch.isalnum() for word in words for ch in word)
