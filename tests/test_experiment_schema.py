"""The declared schema of the experiment file: every key it declares is read by the code
that runs, its defaults are the code's, its checks refuse what they say, and the
README's key reference is what ``alignfreeze keys`` prints."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.experiment_schema import SEARCH, SECTIONS, key_reference, known_defaults
from orchestrator.safe_yaml import load_yaml_file
from orchestrator.search_settings import SearchSettings
from trainables.checkpoint_policy import CheckpointPolicy
from trainables.errors import SpecError
from trainables.settings_schema import (ALIGNER_SETTINGS, CHECKPOINT, FINETUNE, REALIGNMENT, Setting,
                                        check_aligner_settings, check_section)

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_key_reference_is_what_alignfreeze_keys_prints(capsys):
    assert main(["keys"]) == 0
    printed = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- keys:begin -->\n(.*)<!-- keys:end -->", readme, re.S)
    assert block, "README has no key reference"
    assert block.group(1) == printed == key_reference()


def test_every_declared_key_is_read_by_the_code_that_runs():
    from trainables.realignment.aligners import DICO_SETTINGS
    from trainables.realignment.eflomal_aligner import DEFAULT_SETTINGS as EFLOMAL
    from trainables.realignment.realigner import RealignSettings
    from trainables.realignment.similarity_aligner import DEFAULT_SETTINGS as SIMALIGN
    from trainables.tasks.base import FinetuneSettings
    from trainables.tasks.registry import TASKS

    finetune_read = ({f.name for f in dataclasses.fields(FinetuneSettings)} - {"extra"}
                     | {k for task in TASKS.values() for k in task.defaults} | {"dropout", "zh_segmentation"})
    assert set(FINETUNE) <= finetune_read
    assert set(REALIGNMENT) == ({f.name for f in dataclasses.fields(RealignSettings)} - {"xlmr_learning_rate"}
                                | {"pretokenizer"})
    assert (set(ALIGNER_SETTINGS["dico"]), set(ALIGNER_SETTINGS["eflomal"]), set(ALIGNER_SETTINGS["simalign"])) \
        == (set(DICO_SETTINGS), set(EFLOMAL), set(SIMALIGN))
    assert set(CHECKPOINT) == {f.name for f in dataclasses.fields(CheckpointPolicy)}
    assert set(SEARCH) == {f.name for f in dataclasses.fields(SearchSettings)}


def test_every_default_fits_its_own_declaration():
    defaults = known_defaults()
    for heading, where, declared in SECTIONS:
        for key, value in defaults.get(heading, {}).items():
            if isinstance(value, str) and "," in value and declared[key].type == "integer":
                continue          # listed per task: "pos 5, ner 5, ..."
            declared[key].check(value, f"{where}.{key}")


def test_every_choice_names_a_tuple_that_exists():
    for _, _, declared in SECTIONS:
        for setting in declared.values():
            if setting.type == "choice":
                assert setting.allowed_choices() and all(isinstance(c, str) for c in setting.allowed_choices())


@pytest.mark.parametrize("setting, value, message", [
    (Setting("n", "integer", "", 1, 10), True, "x must be an integer from 1 to 10, got True (YAML reads"),
    (Setting("n", "integer", "", 1, 10), 1.0, "x must be an integer from 1 to 10, got 1.0"),
    (Setting("n", "integer", "", 1, 10), "3", "got '3' (a number, not a string: remove the quotes)"),
    (Setting("r", "number", "", 0, 1), math.nan, "x must be a number from 0 to 1, got nan"),
    (Setting("r", "number", "", 0, None), math.inf, "x must be a number >= 0, got inf"),
    (Setting("r", "number", "", 0, 1, low_open=True), 0, "x must be a number > 0 and <= 1, got 0"),
    (Setting("r", "number", "", 0, 1, high_open=True), 1, "x must be a number >= 0 and < 1, got 1"),
    (Setting("r", "number", "", 0, 1), None, "x must be a number from 0 to 1, got None"),
    (Setting("b", "boolean", ""), "false", "x must be true or false, got 'false'"),
    (Setting("b", "boolean", ""), 0, "x must be true or false, got 0"),
    (Setting("c", "choice", "", choices=("random", "length_grouped")), "lenght_grouped",
     "x must be one of random, length_grouped, got 'lenght_grouped'; did you mean length_grouped?"),
    (Setting("c", "choice", "", choices=("a", "b")), ["a"], "x must be one of a, b, got ['a']"),
    (Setting("s", "integer", "", 1, 5, words=("auto",)), "Auto", "x must be 'auto' or an integer from 1 to 5"),
    (Setting("t", "string", ""), "  ", "x must be a string, got '  '"),
])
def test_a_value_outside_its_declaration_is_one_line(setting, value, message):
    with pytest.raises(SpecError) as error:
        setting.check(value, "x")
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("setting, value", [
    (Setting("n", "integer", "", 1, 10), 10),
    (Setting("r", "number", "", 0, 1, low_open=True), 1e-9),
    (Setting("r", "number", "", 0, 1), 1),              # an integer is a number
    (Setting("r", "number", "", 0, 1, null="off"), None),
    (Setting("s", "integer", "", 1, 5, words=("auto",)), "auto"),
])
def test_a_value_inside_its_declaration_passes(setting, value):
    setting.check(value, "x")


def test_a_huge_value_is_not_echoed_whole():
    with pytest.raises(SpecError) as error:
        FINETUNE["epochs"].check("x" * 10_000, "finetune.epochs")
    assert len(str(error.value)) < 200


def test_check_section_names_an_unknown_key_and_its_place():
    with pytest.raises(SpecError, match="unknown key in finetune.ner 'epoch'; did you mean epochs"):
        check_section({"epoch": 2}, FINETUNE, "finetune.ner")
    with pytest.raises(SpecError, match="finetune must be a mapping, got"):
        check_section([1], FINETUNE, "finetune")


def test_aligner_settings_belong_to_one_of_the_grids_aligners():
    check_aligner_settings({"symmetric": False, "samplers": 2}, ["dico", "eflomal"], "a")
    with pytest.raises(SpecError, match="unknown setting of aligner dico in a 'samplers'"):
        check_aligner_settings({"samplers": 2}, ["dico"], "a")
    # a key two aligners share must fit both
    with pytest.raises(SpecError, match="a.max_pairs must be an integer >= 1, got 0"):
        check_aligner_settings({"max_pairs": 0}, ["eflomal"], "a")


def test_scientific_notation_without_a_dot_is_a_number(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text('a: 2e-5\nb: 7.5E-6\nc: -1e+3\nd: "2e-5"\ne: 1e5x\nf: 10\n', encoding="utf-8")
    assert load_yaml_file(path, "file") == {"a": 2e-5, "b": 7.5e-6, "c": -1000.0, "d": "2e-5", "e": "1e5x",
                                            "f": 10}


def test_a_learning_rate_written_2e_5_runs_as_the_number(tmp_path):
    from orchestrator.experiment import load_experiment_file

    demo = (ROOT / "search_spaces" / "demo.yaml").read_text(encoding="utf-8")
    path = tmp_path / "e.yaml"
    assert "  learning_rate: 2.0e-3\n" in demo
    path.write_text(demo.replace("  learning_rate: 2.0e-3\n", "  learning_rate: 3e-5\n"), encoding="utf-8")
    experiment = load_experiment_file(path)
    assert {t.finetune["learning_rate"] for t in experiment.trials} == {3e-5}
