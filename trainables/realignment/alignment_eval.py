"""Quality of word aligners against human alignments: precision, recall, AER.

Gold sets (bundled under ``bundled_data/gold_alignments``; any directory
in the same formats works too), always turned English side first, like
``AlignedPair``:

- awesome-align format: ``xxyy.src-tgt*`` holds ``source ||| target``
  (already tokenized, one pair a line) and ``xxyy.gold*`` one line of
  links per pair, **1-based**, ``i-j`` sure and ``ipj`` possible
  (en-fr Hansards, ro-en, ja-en KFTT, zh-en; ``xx`` is the source side:
  ro-en, ja-en and zh-en have English as target). The WPT format
  (``sentence i j [S|P]`` lines, 1-based) is read from a gold file of the
  same name too.
- SimAlign sample format: ``<p>_<src>.txt`` and ``<p>_<tgt>.txt`` hold
  ``id<TAB>sentence``, ``<p>_<src>_<tgt>.gold`` holds ``id<TAB>links``,
  **0-based** (en-de EuroParl sample, 5 pairs).

Scores over a whole gold set (A = predicted links, S = sure, P = possible
with S included): precision |A∩P|/|A|, recall |A∩S|/|S|,
AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|) (Och & Ney 2003). Every aligner
here gives one-to-one links, so recall is capped where the gold links a
word to several.

How each in-process aligner is run on a gold set:
- ``eflomal`` is trained on the gold set's own sentence pairs (what
  fast_align and eflomal evaluations do: there is no other training
  text); with 100 pairs its figures are far below those of a real corpus.
- ``simalign`` uses the encoder given (``--model``); by default the
  built-in ``tiny-mbert`` (random weights, fixed seed, real mBERT
  vocabulary): it shows the machinery works, and links little beyond
  identical strings; real figures need a real encoder.
- ``dico`` uses the bundled MUSE dictionary ``en-<xx>`` when there is one.

The command ``alignfreeze align-eval`` (``orchestrator/align_eval_command``)
runs ``evaluation_results`` and prints ``evaluation_table``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from trainables.errors import DataError, SpecError, unknown_name
from trainables.realignment.pretokenization import contains_word
from trainables.realignment.word_pairs import Link, dictionary_links, load_muse_dictionary

GOLD_DIRECTORY = "gold_alignments"          # below bundled_data
EVALUATED_ALIGNERS = ("eflomal", "simalign", "dico")
DEFAULT_SIMALIGN_MODEL = "tiny-mbert"
# ISO 639-3 codes of the SimAlign sample file names
_THREE_LETTER = {"eng": "en", "deu": "de", "fra": "fr", "ron": "ro", "jpn": "ja", "zho": "zh",
                 "ces": "cs", "fas": "fa", "hin": "hi"}


@dataclass(frozen=True)
class GoldSet:
    name: str                                        # "en-fr", "ro-en", ...
    language: str                                    # the non-English side
    tokenized: list[tuple[tuple[str, ...], tuple[str, ...]]]   # English side first
    sure: list[frozenset[Link]]                      # 0-based, English index first
    possible: list[frozenset[Link]]                  # includes the sure links
    source: str                                      # where it was read from


# ------------------------------------------------------------------ reading

def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError("gold alignment file not found", path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text ({error.reason})", path) from None


def _parse_links(text: str, base: int, path: Path, number: int) -> tuple[set[Link], set[Link]]:
    sure, possible = set(), set()
    for token in text.split():
        match = re.fullmatch(r"(\d+)([-p])(\d+)", token)
        if not match:
            raise DataError(f"bad alignment link {token!r} (expected i-j or ipj)", path, number)
        i, j = int(match[1]) - base, int(match[3]) - base
        if i < 0 or j < 0:
            raise DataError(f"link {token!r} below {base} in a {base}-based file", path, number)
        (sure if match[2] == "-" else possible).add((i, j))
    return sure, possible | sure


_WPT_LINE = re.compile(r"\d+\s+\d+\s+\d+(\s+[SP])?")


def _wpt_links(lines: list[str], count: int, path: Path) -> list[tuple[set[Link], set[Link]]]:
    links: list[tuple[set[Link], set[Link]]] = [(set(), set()) for _ in range(count)]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split()
        sentence, i, j = int(fields[0]) - 1, int(fields[1]) - 1, int(fields[2]) - 1
        if not 0 <= sentence < count or i < 0 or j < 0:
            raise DataError(f"link {line.strip()!r} outside {count} 1-based sentence pairs", path, number)
        sure, possible = links[sentence]
        possible.add((i, j))
        if len(fields) == 3 or fields[3] == "S":
            sure.add((i, j))
    return links


def _oriented(name: str, source_language: str, target_language: str, pairs, links, origin: str) -> GoldSet:
    """A GoldSet with the English side first (source first when neither is English)."""
    swap = target_language == "en" and source_language != "en"
    language = source_language if swap else target_language
    tokenized, sure, possible = [], [], []
    for (src, tgt), (s, p) in zip(pairs, links):
        if swap:
            tokenized.append((tgt, src))
            sure.append(frozenset((j, i) for i, j in s))
            possible.append(frozenset((j, i) for i, j in p))
        else:
            tokenized.append((src, tgt))
            sure.append(frozenset(s))
            possible.append(frozenset(p))
    return GoldSet(name, language, tokenized, sure, possible, origin)


def _check_bounds(pairs, links, path: Path) -> None:
    for number, ((src, tgt), (_, possible)) in enumerate(zip(pairs, links), 1):
        for i, j in possible:
            if i >= len(src) or j >= len(tgt):
                raise DataError(f"link {i}-{j} (0-based) outside a sentence pair of "
                                f"{len(src)}x{len(tgt)} words", path, number)


def read_awesome_gold(text_path: str | Path, gold_path: str | Path, source_language: str,
                      target_language: str) -> GoldSet:
    """A gold set in the awesome-align format (1-based ``i-j``/``ipj``; or WPT lines)."""
    text_path, gold_path = Path(text_path), Path(gold_path)
    pairs = []
    for number, line in enumerate(_read_lines(text_path), 1):
        sides = line.split("|||")
        if len(sides) != 2:
            raise DataError("expected 'source ||| target'", text_path, number)
        pairs.append((tuple(sides[0].split()), tuple(sides[1].split())))
    gold_lines = _read_lines(gold_path)
    non_empty = [line for line in gold_lines if line.strip()]
    if non_empty and all(_WPT_LINE.fullmatch(line.strip()) for line in non_empty):
        links = _wpt_links(gold_lines, len(pairs), gold_path)
    else:
        if len(gold_lines) != len(pairs):
            raise DataError(f"{len(gold_lines)} alignment lines for {len(pairs)} sentence pairs in "
                            f"{text_path.name}", gold_path)
        links = [_parse_links(line, 1, gold_path, number) for number, line in enumerate(gold_lines, 1)]
    _check_bounds(pairs, links, gold_path)
    return _oriented(f"{source_language}-{target_language}", source_language, target_language,
                     pairs, links, str(gold_path))


def _id_lines(path: Path) -> dict[str, str]:
    entries = {}
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        key, tab, value = line.partition("\t")
        if not tab:
            raise DataError("expected 'id<TAB>text'", path, number)
        entries[key.strip()] = value
    return entries


def read_simalign_gold(source_path: str | Path, target_path: str | Path, gold_path: str | Path,
                       source_language: str, target_language: str) -> GoldSet:
    """A gold set in the SimAlign sample format (``id<TAB>...`` lines, 0-based links)."""
    source_path, target_path, gold_path = Path(source_path), Path(target_path), Path(gold_path)
    sources, targets = _id_lines(source_path), _id_lines(target_path)
    pairs, links = [], []
    for number, line in enumerate(_read_lines(gold_path), 1):
        if not line.strip():
            continue
        key, _, text = line.partition("\t")
        key = key.strip()
        if key not in sources or key not in targets:
            raise DataError(f"sentence id {key!r} missing from {source_path.name} or {target_path.name}",
                            gold_path, number)
        pairs.append((tuple(sources[key].split()), tuple(targets[key].split())))
        links.append(_parse_links(text, 0, gold_path, number))
    _check_bounds(pairs, links, gold_path)
    return _oriented(f"{source_language}-{target_language}", source_language, target_language,
                     pairs, links, str(gold_path))


def gold_sets_in(directory: str | Path) -> dict[str, GoldSet]:
    """Every gold set in ``directory``, by pair name (``en-fr``)."""
    directory = Path(directory)
    found: dict[str, GoldSet] = {}
    for text_path in sorted(directory.glob("*.src-tgt*")):
        match = re.fullmatch(r"([a-z]{2})([a-z]{2})\.src-tgt(.*)", text_path.name)
        gold_path = text_path.with_name(text_path.name.replace(".src-tgt", ".gold", 1))
        if match and gold_path.is_file():
            found[f"{match[1]}-{match[2]}"] = read_awesome_gold(text_path, gold_path, match[1], match[2])
    for gold_path in sorted(directory.glob("*_*_*.gold")):
        prefix, source, target = gold_path.stem.rsplit("_", 2)
        source_path = directory / f"{prefix}_{source}.txt"
        target_path = directory / f"{prefix}_{target}.txt"
        if source_path.is_file() and target_path.is_file():
            src, tgt = _THREE_LETTER.get(source, source), _THREE_LETTER.get(target, target)
            found[f"{src}-{tgt}"] = read_simalign_gold(source_path, target_path, gold_path, src, tgt)
    return found


def bundled_gold_sets() -> dict[str, GoldSet]:
    from trainables.bundled import bundled_path

    return gold_sets_in(bundled_path(GOLD_DIRECTORY))


def load_gold_sets(names_or_directories: Sequence[str] | None = None) -> list[GoldSet]:
    """Gold sets by bundled name (``en-fr``) or directory; all bundled ones by default."""
    if not names_or_directories:
        return list(bundled_gold_sets().values())
    bundled: dict[str, GoldSet] | None = None
    chosen = []
    for item in names_or_directories:
        if Path(item).expanduser().is_dir():
            sets = gold_sets_in(Path(item).expanduser())
            if not sets:
                raise DataError("no gold alignment set found (expected xxyy.src-tgt* with xxyy.gold*)", item)
            chosen.extend(sets.values())
            continue
        bundled = bundled if bundled is not None else bundled_gold_sets()
        if item not in bundled:
            raise unknown_name("gold alignment set", item, bundled)
        chosen.append(bundled[item])
    return chosen


# ------------------------------------------------------------------ scoring

def alignment_scores(predicted: Sequence[Sequence[Link]], sure: Sequence[frozenset[Link]],
                     possible: Sequence[frozenset[Link]]) -> dict[str, float | int]:
    """Precision, recall and AER of predicted links against a gold set, over all its pairs."""
    if not len(predicted) == len(sure) == len(possible):
        raise ValueError("predicted and gold alignments differ in number of sentence pairs")
    a = a_and_s = a_and_p = s = 0
    for links, sure_links, possible_links in zip(predicted, sure, possible):
        links = set(links)
        a += len(links)
        s += len(sure_links)
        a_and_s += len(links & sure_links)
        a_and_p += len(links & (possible_links | sure_links))
    return {
        "precision": a_and_p / a if a else 0.0,
        "recall": a_and_s / s if s else 0.0,
        "aer": 1.0 - (a_and_s + a_and_p) / (a + s) if a + s else 0.0,
        "links": a,
        "sure": s,
    }


# ---------------------------------------------------------------- evaluation

def bundled_dictionary(language: str) -> Path | None:
    from trainables.bundled import BUNDLED_ROOT

    path = BUNDLED_ROOT / "dictionaries" / "muse" / f"en-{language}.first3000.txt"
    return path if path.is_file() else None


def predicted_links(name: str, gold_set: GoldSet, settings: dict[str, Any] | None = None,
                    encoder=None, dictionary_path: str | Path | None = None) -> list[list[Link]]:
    """One-to-one links of every sentence pair of ``gold_set`` by aligner ``name``."""
    if name == "eflomal":
        from trainables.realignment.eflomal_aligner import eflomal_links
        return eflomal_links(gold_set.tokenized, settings)
    if name == "simalign":
        from trainables.realignment.similarity_aligner import simalign_links
        return simalign_links(gold_set.tokenized, encoder, settings)
    if name == "dico":
        if dictionary_path is None:
            raise SpecError(f"aligner 'dico' needs a dictionary for en-{gold_set.language}")
        dictionary = load_muse_dictionary(dictionary_path)
        return [dictionary_links(src, tgt, dictionary) if contains_word(src) and contains_word(tgt) else []
                for src, tgt in gold_set.tokenized]
    raise unknown_name("aligner to evaluate", name, EVALUATED_ALIGNERS)


def aligner_label(name: str, settings: dict[str, Any] | None = None, encoder=None) -> str:
    """A table row name that says which variant ran."""
    if name == "eflomal":
        from trainables.realignment.eflomal_aligner import resolved_settings
        return f"eflomal/{resolved_settings(settings)['symmetrisation']}"
    if name == "simalign" and encoder is not None:
        from trainables.realignment.similarity_aligner import resolved_settings
        return f"simalign/layer{resolved_settings(settings, encoder[0])['layer']}"
    return name


def evaluate_aligner(name: str, gold_set: GoldSet, settings: dict[str, Any] | None = None,
                     encoder=None, dictionary_path: str | Path | None = None,
                     model_name: str | None = None) -> dict[str, Any]:
    """Scores of aligner ``name`` on ``gold_set`` (with its wall time in seconds)."""
    started = time.perf_counter()
    links = predicted_links(name, gold_set, settings, encoder, dictionary_path)
    scores = alignment_scores(links, gold_set.sure, gold_set.possible)
    skipped = sum(1 for src, tgt in gold_set.tokenized if not (contains_word(src) and contains_word(tgt)))
    return {"aligner": aligner_label(name, settings, encoder), "pair": gold_set.name,
            "pairs": len(gold_set.tokenized), "skipped": skipped, "model": model_name,
            "seconds": time.perf_counter() - started, **scores}


def evaluation_table(results: Sequence[dict[str, Any]]) -> str:
    """One plain-text table: a row per (aligner, gold set)."""
    header = f"{'aligner':<34} {'pair':<6} {'P':>6} {'R':>6} {'AER':>6} {'links':>6} {'sure':>6} {'pairs':>5}"
    lines = [header, "-" * len(header)]
    for row in results:
        if row.get("note"):
            lines.append(f"{row['aligner']:<34} {row['pair']:<6} {row['note']}")
            continue
        lines.append(f"{row['aligner']:<34} {row['pair']:<6} {row['precision']:>6.3f} {row['recall']:>6.3f} "
                     f"{row['aer']:>6.3f} {row['links']:>6d} {row['sure']:>6d} {row['pairs']:>5d}")
    return "\n".join(lines)


def evaluation_results(aligners: Sequence[str] = EVALUATED_ALIGNERS, gold: Sequence[str] | None = None,
                       model: str | None = None, layer: int | None = None,
                       symmetrisations: Sequence[str] = ("grow-diag-final-and", "intersection"),
                       ) -> list[dict[str, Any]]:
    """Evaluate each aligner (eflomal: each symmetrisation) on each gold set."""
    for name in aligners:
        if name not in EVALUATED_ALIGNERS:
            raise unknown_name("aligner to evaluate", name, EVALUATED_ALIGNERS)
    gold_sets = load_gold_sets(gold)
    encoder, model_name = None, None
    if "simalign" in aligners:
        from trainables.models import load_encoder

        model_name = model or DEFAULT_SIMALIGN_MODEL
        encoder = load_encoder(model_name)
    results = []
    for name in aligners:
        variants: list[dict[str, Any]] = [{}]
        if name == "eflomal":
            variants = [{"symmetrisation": method} for method in symmetrisations]
        if name == "simalign" and layer is not None:
            variants = [{"layer": layer}]
        for settings in variants:
            for gold_set in gold_sets:
                if name == "dico":
                    dictionary = bundled_dictionary(gold_set.language)
                    if dictionary is None:
                        results.append({"aligner": "dico", "pair": gold_set.name,
                                        "note": f"no bundled en-{gold_set.language} dictionary"})
                        continue
                    results.append(evaluate_aligner(name, gold_set, dictionary_path=dictionary))
                    continue
                result = evaluate_aligner(name, gold_set, settings, encoder=encoder, model_name=model_name)
                if name == "simalign":
                    result["aligner"] += f" ({model_name})"
                results.append(result)
    return results
