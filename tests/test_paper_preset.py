"""The paper's grid as a preset: validated offline, its data listed, its settings the paper's."""

from __future__ import annotations

import shutil
import threading
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from search_spaces import preset_path
from trainables.languages import (PAPER_NER_LANGUAGES, PAPER_NLI_LANGUAGES, PAPER_POS_LANGUAGES,
                                  PAPER_QA_LANGUAGES, PAPER_REALIGNMENT_LANGUAGES, PAPER_UD_TREEBANKS)

PAPER_SEEDS = (31, 42, 66, 23, 17)
PAPER_MODELS = ("bert-base-multilingual-cased", "distilbert-base-multilingual-cased", "xlm-roberta-base")


@pytest.fixture
def paper_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _paper():
    from orchestrator.experiment import load_experiment_file

    return load_experiment_file(preset_path("paper"))


def test_paper_grid_is_the_papers(paper_offline):
    experiment = _paper()
    trials = experiment.trials
    # 3 models x 4 tasks x (baseline + 3 realigned strategies) x 5 seeds
    assert len(trials) == 3 * 4 * 4 * 5 == 240
    assert {t.model for t in trials} == set(PAPER_MODELS)
    assert {t.task for t in trials} == {"pos", "ner", "nli", "qa"}
    assert {t.strategy for t in trials} == {"baseline", "full", "front", "back"}
    assert {t.aligner for t in trials if t.realigns} == {"dico"}
    assert {t.seed for t in trials} == set(PAPER_SEEDS)
    targets = {"pos": PAPER_POS_LANGUAGES, "ner": PAPER_NER_LANGUAGES, "nli": PAPER_NLI_LANGUAGES,
               "qa": PAPER_QA_LANGUAGES}
    for trial in trials:
        assert trial.languages == targets[trial.task]
        if trial.realigns:
            assert tuple(trial.realignment["languages"]) == PAPER_REALIGNMENT_LANGUAGES
            assert set(trial.realignment["parallel"].values()) == {"hub"}
            assert set(trial.realignment["dictionaries"].values()) == {"muse"}
    assert experiment.num_blocks == {"bert-base-multilingual-cased": 12,
                                     "distilbert-base-multilingual-cased": 6, "xlm-roberta-base": 12}


def test_every_paper_pos_language_has_its_treebank():
    assert set(PAPER_POS_LANGUAGES) | {"en"} <= set(PAPER_UD_TREEBANKS)


def test_paper_dry_run_validates_offline_and_lists_what_it_fetches(paper_offline, capsys):
    from orchestrator.cli import main
    from trainables.realignment.muse import MUSE_BASE_URL

    assert main(["run", str(preset_path("paper")), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 240      # stdout: one trial id a line
    assert all(line.startswith(PAPER_MODELS) for line in captured.out.splitlines())
    plan = captured.err
    # realignment corpora: OPUS-100, one config per language (codes in alphabetical order)
    for language in PAPER_REALIGNMENT_LANGUAGES:
        assert f"Helsinki-NLP/opus-100 [{'-'.join(sorted(['en', language]))}] train" in plan
        assert f"{MUSE_BASE_URL}/en-{language}.txt: dictionary ({language})" in plan
    # PoS: the paper's treebank of each language; the other tasks' Hub datasets
    assert "universal-dependencies/universal_dependencies [en_ewt] train: pos train (en)" in plan
    assert "universal-dependencies/universal_dependencies [th_pud] test: pos test (th)" in plan
    assert "unimelb-nlp/wikiann [zh] test: ner test (zh)" in plan
    assert "google/xquad [xquad.ro] validation: qa test (ro)" in plan
    assert "local data read (0 files or directories" in plan


def test_environment_variables_expand_in_data_locations(monkeypatch, tmp_path):
    import yaml

    from orchestrator.experiment import experiment_from_dict
    from trainables.bundled import bundled_path
    from trial_fixtures import small_pos_experiment

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(bundled_path("ud/fr_gsd-ud-test.first100.conllu"), data / "fr.conllu")
    monkeypatch.setenv("MY_UD", str(data))
    raw = small_pos_experiment(strategies=["baseline"])
    raw["data"]["pos"]["eval"]["fr"] = "${MY_UD}/fr.conllu"
    experiment = experiment_from_dict(yaml.safe_load(yaml.safe_dump(raw)), base=tmp_path)
    assert {t.data["eval"]["fr"] for t in experiment.trials} == {str((data / "fr.conllu").resolve())}


def test_unquoted_norwegian_is_explained():
    from orchestrator.experiment import experiment_from_dict
    from trainables.errors import SpecError
    from trial_fixtures import small_pos_experiment

    raw = small_pos_experiment(strategies=["baseline"])
    raw["languages"] = ["fr", False]        # what YAML makes of `- no`
    with pytest.raises(SpecError, match="unquoted no as false: quote it: 'no'"):
        experiment_from_dict(raw, base=Path.cwd())


def test_unset_environment_variable_is_one_line(tmp_path, capsys):
    import yaml

    from orchestrator.cli import main
    from trial_fixtures import small_pos_experiment

    raw = small_pos_experiment(strategies=["baseline"])
    raw["data"]["pos"]["train"] = "${ALIGNFREEZE_TEST_UNSET}/en.conllu"
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["run", str(path), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "alignfreeze: error: environment variable ALIGNFREEZE_TEST_UNSET is not set "
        "(used in '${ALIGNFREEZE_TEST_UNSET}/en.conllu')"]


@pytest.fixture
def muse_server(tmp_path):
    """A loopback HTTP server publishing one dictionary as MUSE lays them out."""
    from trainables.bundled import bundled_path

    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(bundled_path("dictionaries/muse/en-fr.first3000.txt"), site / "en-fr.txt")
    server = HTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site / "en-fr.txt"
    server.shutdown()
    server.server_close()


def test_muse_dictionary_is_fetched_once_into_the_cache(muse_server, monkeypatch, tmp_path):
    from trainables.realignment.muse import muse_dictionary
    from trainables.realignment.word_pairs import load_muse_dictionary

    url, published = muse_server
    monkeypatch.setenv("ALIGNFREEZE_MUSE_URL", url)
    monkeypatch.setenv("ALIGNFREEZE_CACHE", str(tmp_path / "cache"))
    path = muse_dictionary("fr")
    assert path == tmp_path / "cache" / "muse" / "en-fr.txt"
    assert path.read_bytes() == published.read_bytes()
    load_muse_dictionary(path)               # a well-formed MUSE dictionary
    published.unlink()                       # the second call reads the cache, not the site
    assert muse_dictionary("fr") == path


def test_unreachable_muse_dictionary_is_one_line_and_leaves_nothing(muse_server, monkeypatch, tmp_path):
    from trainables.errors import DataError
    from trainables.realignment.muse import muse_dictionary

    url, _ = muse_server
    monkeypatch.setenv("ALIGNFREEZE_MUSE_URL", url)
    monkeypatch.setenv("ALIGNFREEZE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError) as raised:
        muse_dictionary("de")                # not published
    assert str(raised.value).startswith(f"{url}/en-de.txt: cannot fetch the MUSE dictionary en-de (")
    assert "realignment.dictionaries.de" in str(raised.value)
    assert list((tmp_path / "cache" / "muse").iterdir()) == []


def test_align_command_fetches_the_muse_dictionary(muse_server, monkeypatch, tmp_path, capsys):
    """`alignfreeze align --dictionary muse` gives the same pairs as the local copy."""
    from orchestrator.cli import main

    url, published = muse_server
    monkeypatch.setenv("ALIGNFREEZE_MUSE_URL", url)
    monkeypatch.setenv("ALIGNFREEZE_CACHE", str(tmp_path / "cache"))
    common = ["align", "--aligner", "dico", "--language", "fr", "--max-pairs", "40",
              "--source", "bundled:parallel/tatoeba/tatoeba.fra-eng.eng.first500",
              "--target", "bundled:parallel/tatoeba/tatoeba.fra-eng.fra.first500"]
    assert main(common + ["--dictionary", str(published)]) == 0
    local = capsys.readouterr().out
    assert main(common + ["--dictionary", "muse"]) == 0
    fetched = capsys.readouterr().out
    assert fetched == local and len(local.splitlines()) == 40
    assert (tmp_path / "cache" / "muse" / "en-fr.txt").read_bytes() == published.read_bytes()
