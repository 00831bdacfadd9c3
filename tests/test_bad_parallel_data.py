"""Bad realignment corpora: one line, exit status 2, before any trial where the files tell.

Each case mutates the demo experiment and runs ``alignfreeze run FILE
--dry-run`` (validation and data preflight, no trial), as
``test_bad_input.py`` does.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from trainables.bundled import bundled_path

DEMO = Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"
FR_SOURCE = "parallel/tatoeba/tatoeba.fra-eng.eng.first500"


@pytest.fixture
def experiment() -> dict:
    return copy.deepcopy(yaml.safe_load(DEMO.read_text(encoding="utf-8")))


def error_line(tmp_path: Path, capsys, experiment: dict) -> str:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False, allow_unicode=True), encoding="utf-8")
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "--dry-run"])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("alignfreeze: error: "), captured.err
    assert captured.out == "", "no trial may be listed after an error"
    return lines[0][len("alignfreeze: error: "):]


def test_empty_line_aligned_files(tmp_path, capsys, experiment):
    source, target = tmp_path / "empty.en", tmp_path / "empty.fr"
    source.write_text("", encoding="utf-8")
    target.write_text("", encoding="utf-8")
    experiment["realignment"]["parallel"]["fr"] = {"source": str(source), "target": str(target)}
    assert error_line(tmp_path, capsys, experiment) == f"{source}: parallel files are empty"


def test_a_tsv_without_a_sentence_pair(tmp_path, capsys, experiment):
    blank = tmp_path / "en-fr.tsv"
    blank.write_text("\n\n", encoding="utf-8")
    experiment["realignment"]["parallel"]["fr"] = str(blank)
    assert error_line(tmp_path, capsys, experiment) == (
        f"{blank}: no sentence pair (english<TAB>translation line) in parallel file")


def test_an_unreadable_parallel_file(tmp_path, capsys, experiment, monkeypatch):
    import builtins

    source = str(bundled_path(FR_SOURCE))
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == source:
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    assert error_line(tmp_path, capsys, experiment) == f"{source}: cannot read (Permission denied)"


def test_a_dictionary_that_links_nothing_in_the_look_ahead(tmp_path, capsys, experiment):
    """The language is named with the number of pairs read, before any trial."""
    unrelated = tmp_path / "en-de.txt"
    unrelated.write_text("xyzzy\tplugh\n", encoding="utf-8")
    experiment["realignment"]["dictionaries"]["de"] = str(unrelated)
    assert error_line(tmp_path, capsys, experiment) == (
        "realignment language de: no usable aligned sentence pair among its 500 sentence pair(s) "
        "(none with a word link from dico)")


def test_an_unknown_interleaving(tmp_path, capsys, experiment):
    experiment["realignment"]["interleaving"] = "longest"
    assert error_line(tmp_path, capsys, experiment) == (
        "realignment.interleaving must be one of shortest, all_pairs, got 'longest'")
