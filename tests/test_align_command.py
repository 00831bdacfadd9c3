"""``alignfreeze align``: the reference's dictionary pairs, pharaoh export read back, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from trainables.bundled import bundled_path
from trainables.realignment.corpus import realignment_pairs
from trainables.realignment.word_pairs import read_pharaoh

PARITY = Path(__file__).resolve().parent / "data" / "parity" / "dico_pairs" / "fra.jsonl"
SOURCE = str(bundled_path("parallel/tatoeba/tatoeba.fra-eng.eng.first500"))
TARGET = str(bundled_path("parallel/tatoeba/tatoeba.fra-eng.fra.first500"))
DICTIONARY = "bundled:dictionaries/muse/en-fr.first3000.txt"
FRENCH = ["--aligner", "dico", "--language", "fr", "--source", SOURCE, "--target", TARGET,
          "--dictionary", DICTIONARY, "--max-pairs", "300"]


def test_dico_on_the_fra_slice_reproduces_the_reference_cases(tmp_path, capsys):
    out = tmp_path / "fr.jsonl"
    assert main(["align", *FRENCH, "--out", str(out)]) == 0
    produced = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = [json.loads(line) for line in PARITY.read_text(encoding="utf-8").splitlines()]
    assert produced == [{key: case[key] for key in ("line", "en_tokens", "xx_tokens", "links")}
                        for case in expected]
    assert "300 sentence pairs, 200 with links, 367 links" in capsys.readouterr().err


def test_tsv_input_to_stdout(tmp_path, capsys):
    tsv = tmp_path / "en-fr.tsv"
    tsv.write_text("The house is big.\tLa maison est grande.\nYes!\tOui !\n", encoding="utf-8")
    assert main(["align", "--aligner", "dico", "--language", "fr", "--parallel", str(tsv),
                 "--dictionary", DICTIONARY]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # "The" is not "the": matching is case-sensitive, as in the reference
    assert lines[0] == {"line": 0, "en_tokens": ["The", "house", "is", "big", "."],
                        "xx_tokens": ["La", "maison", "est", "grande", "."], "links": [[1, 1], [3, 3]]}
    # a pair without a link is written too
    assert lines[1]["line"] == 1 and lines[1]["links"] == []


def test_pharaoh_export_is_read_back_by_the_pharaoh_aligner(tmp_path, monkeypatch):
    """The exported file, used as ``realignment.alignments``, gives the same word pairs
    as the dictionary aligner on the same parallel data and pre-tokenizer."""
    monkeypatch.setenv("ALIGNFREEZE_CACHE", str(tmp_path / "cache"))
    jsonl, pharaoh = tmp_path / "fr.jsonl", tmp_path / "fr.align"
    assert main(["align", *FRENCH, "--out", str(jsonl)]) == 0
    assert main(["align", *FRENCH, "--format", "pharaoh", "--out", str(pharaoh)]) == 0
    cases = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert read_pharaoh(pharaoh) == [[tuple(link) for link in case["links"]] for case in cases]
    parallel = {"fr": {"source": SOURCE, "target": TARGET}}
    from_file = realignment_pairs(["fr"], parallel, "pharaoh", alignments={"fr": str(pharaoh)}, max_pairs=300)
    from_dictionary = realignment_pairs(["fr"], parallel, "dico", max_pairs=300,
                                        dictionaries={"fr": str(bundled_path(DICTIONARY[len("bundled:"):]))})
    assert from_file["fr"] == from_dictionary["fr"]
    assert len(from_file["fr"]) == 200


def test_unicode_pretokenizer_option(tmp_path, capsys):
    tsv = tmp_path / "en-hi.tsv"
    tsv.write_text("The room is clean.\tकमरा साफ़ है।\n", encoding="utf-8")
    common = ["align", "--aligner", "dico", "--language", "hi", "--parallel", str(tsv),
              "--dictionary", "bundled:dictionaries/muse/en-hi.first3000.txt"]
    assert main(common) == 0
    assert json.loads(capsys.readouterr().out)["xx_tokens"] == ["कमर", "ा", "स", "ा", "फ", "़", "ह", "ै।"]
    assert main([*common, "--pretokenizer", "unicode"]) == 0
    assert json.loads(capsys.readouterr().out)["xx_tokens"] == ["कमरा", "साफ़", "है", "।"]


def test_eflomal_writes_one_line_per_pair(tmp_path, capsys):
    tsv = tmp_path / "en-fr.tsv"
    rows = [("the cat sleeps", "le chat dort"), ("the dog sleeps", "le chien dort"),
            ("a cat eats", "un chat mange"), ("...", "..."), ("the dog eats", "le chien mange")] * 4
    tsv.write_text("".join(f"{en}\t{fr}\n" for en, fr in rows), encoding="utf-8")
    out = tmp_path / "fr.align"
    assert main(["align", "--aligner", "eflomal", "--language", "fr", "--parallel", str(tsv),
                 "--setting", "symmetrisation=intersection", "--format", "pharaoh", "--out", str(out)]) == 0
    links = read_pharaoh(out)
    assert len(links) == len(rows)
    assert links[3] == []          # a side without words is skipped
    assert all(i < 3 and j < 3 for pair in links for i, j in pair) and any(links)


@pytest.mark.parametrize("arguments, message", [
    (["--language", "xx", "--parallel", "PARALLEL", "--dictionary", DICTIONARY], "unknown --language 'xx'"),
    (["--language", "en", "--parallel", "PARALLEL", "--dictionary", DICTIONARY], "English is always the other"),
    (["--language", "fr", "--parallel", "PARALLEL"], "aligner 'dico' needs --dictionary"),
    (["--language", "fr", "--parallel", "MISSING", "--dictionary", DICTIONARY], "MISSING: file or directory not found"),
    (["--language", "fr", "--parallel", "BADTSV", "--dictionary", DICTIONARY],
     "BADTSV:2: expected 'english<TAB>translation', found 1 fields"),
    (["--language", "fr", "--parallel", "PARALLEL", "--dictionary", "BADDICT"], "BADDICT:1: expected"),
    (["--language", "fr", "--source", SOURCE, "--dictionary", DICTIONARY], "no parallel data"),
    (["--language", "fr", "--parallel", "PARALLEL", "--dictionary", DICTIONARY, "--setting", "casefold=true"],
     "unknown key in aligner_settings 'casefold'"),
])
def test_bad_input_is_one_line_and_exit_2_and_writes_nothing(arguments, message, tmp_path, capsys):
    files = {"PARALLEL": tmp_path / "ok.tsv", "BADTSV": tmp_path / "bad.tsv", "MISSING": tmp_path / "missing.tsv",
             "BADDICT": tmp_path / "dict.txt"}
    files["PARALLEL"].write_text("the dog\tle chien\n", encoding="utf-8")
    files["BADTSV"].write_text("the dog\tle chien\nno tab here\n", encoding="utf-8")
    files["BADDICT"].write_text("dog\n", encoding="utf-8")
    arguments = [str(files[item]) if item in files else item for item in arguments]
    message = next((message.replace(key, str(path)) for key, path in files.items() if message.startswith(key)),
                   message)
    out = tmp_path / "out.jsonl"
    assert main(["align", "--aligner", "dico", *arguments, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.*"))


def test_simalign_needs_a_model(capsys):
    assert main(["align", "--aligner", "simalign", "--language", "fr", "--source", SOURCE,
                 "--target", TARGET]) == 2
    assert "needs --model" in capsys.readouterr().err
