"""Chinese WikiANN re-segmented from characters into words (``finetune.zh_segmentation``).

WikiANN tokenises Chinese into single characters, one BIO tag each. The
reference implementation re-segments every Chinese sentence into words
before tagging it (Stanford CoreNLP in the reference; jieba here, called
the way ``realignment.pretokenization`` calls it for the reference's
Chinese pre-tokenisation: the sentence cut at every "。", each piece
segmented, the "。" kept as words). Tags then sit on words, both for the
gold labels and for what the model predicts.

How the character tags become word tags (the reference's rule): within a
segmenter word, consecutive characters stay together while their tags
continue one another -- the same tag as the first character of the
current piece, or ``I-X`` after a piece that began with ``B-X``. A ``B-X``
character, or any other change of tag, starts a new piece. Each piece is
one word, tagged with the tag of its first character. So an entity
boundary inside a segmenter word cuts the word there, and no entity is
lost or merged.

Differences from the reference, on inputs where it misbehaves:

* Whitespace characters (and the literal token ``None``, which the
  reference also reads as a space) belong to no word: the reference's
  segmenter dropped them from its output, which shifted every later tag by
  one character there; here each tag stays on its own character.
* A sentence whose tokens are not all single characters (already
  segmented data) is left as it is, and counted; the reference stopped
  with an error.
"""

from __future__ import annotations

import logging
from typing import Sequence

from trainables.tasks.token_classification import TaggedSentence

log = logging.getLogger(__name__)

SEGMENTATIONS = ("none", "jieba")
DEFAULT_SEGMENTATION = "none"

_MISSING_CHARACTER = "None"   # how some WikiANN copies write a missing (space) character


def continues(piece_tag: str, tag: str) -> bool:
    """Whether a character tagged ``tag`` stays in a piece whose first character has ``piece_tag``."""
    if tag.startswith("B-"):
        return False
    return tag == piece_tag or (piece_tag.startswith("B-") and tag == "I-" + piece_tag[2:])


def split_word(characters: str, tags: Sequence[str]) -> list[tuple[str, str]]:
    """The pieces (text, tag) of one segmenter word, given the tag of each character."""
    pieces: list[list[str]] = []   # [text, tag of its first character]
    for character, tag in zip(characters, tags, strict=True):
        if pieces and continues(pieces[-1][1], tag):
            pieces[-1][0] += character
        else:
            pieces.append([character, tag])
    return [(text, tag) for text, tag in pieces]


def is_character_tokenised(sentence: TaggedSentence) -> bool:
    return all(len(word) == 1 or word == _MISSING_CHARACTER for word in sentence.words)


def resegment_sentence(sentence: TaggedSentence) -> TaggedSentence:
    """A character-tokenised sentence as jieba words, tagged by the reference's rule."""
    from trainables.realignment.pretokenization import pretokenize

    characters = [" " if word == _MISSING_CHARACTER else word for word in sentence.words]
    # position in the sentence of every non-space character, in order
    kept = [i for i, character in enumerate(characters) if not character.isspace()]
    # pretokenize drops whitespace and never changes a character
    words = pretokenize("".join(characters), "zh", "reference")
    if "".join(words) != "".join(characters[i] for i in kept):
        raise AssertionError(f"jieba changed the characters of {''.join(characters)!r}")
    new_words: list[str] = []
    new_tags: list[str] = []
    offset = 0
    for word in words:
        positions = kept[offset:offset + len(word)]
        offset += len(word)
        for text, tag in split_word(word, [sentence.labels[i] for i in positions]):
            new_words.append(text)
            new_tags.append(tag)
    return TaggedSentence(tuple(new_words), tuple(new_tags))


def resegment(sentences: Sequence[TaggedSentence], segmentation: str) -> list[TaggedSentence]:
    """``sentences`` re-segmented with ``segmentation`` (``none``: unchanged)."""
    if segmentation == "none":
        return list(sentences)
    if segmentation != "jieba":
        from trainables.errors import unknown_name

        raise unknown_name("zh_segmentation", segmentation, SEGMENTATIONS)
    result, untouched = [], 0
    for sentence in sentences:
        if is_character_tokenised(sentence):
            result.append(resegment_sentence(sentence))
        else:
            untouched += 1
            result.append(sentence)
    if untouched:
        log.warning("zh_segmentation jieba: %d of %d Chinese sentences are not character-tokenised "
                    "and were left as they are", untouched, len(sentences))
    return result
