"""KEY=VALUE overrides on the command line: applied to the file's data, read as YAML,
validated like the file; --version."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.overrides import apply_overrides, parse_override
from trainables.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "search_spaces" / "demo.yaml"


def test_overrides_replace_values_and_create_mappings():
    raw = {"seeds": [1, 2], "finetune": {"epochs": 2, "batch_size": 16}, "languages": ["fr", "de"]}
    result = apply_overrides(raw, ["seeds=[31]", "finetune.epochs=1", "finetune.pos.learning_rate=2e-5",
                                   "languages=[es]", "description='no'"])
    assert result == {"seeds": [31], "finetune": {"epochs": 1, "batch_size": 16, "pos": {"learning_rate": 2e-5}},
                      "languages": ["es"], "description": "no"}
    assert raw["seeds"] == [1, 2]                      # the file's data is left as it is


@pytest.mark.parametrize("text, value", [("a=1", 1), ("a=1.5", 1.5), ("a=true", True), ("a=[x, y]", ["x", "y"]),
                                         ("a={b: 1}", {"b": 1}), ("a=", None), ("a=x=y", "x=y")])
def test_values_are_yaml(text, value):
    assert parse_override(text) == (["a"], value)


@pytest.mark.parametrize("text, message", [
    ("seeds", "override 'seeds': expected KEY=VALUE"),
    ("=3", "expected KEY=VALUE"),
    ("seeds=[1", "override seeds: invalid YAML value '[1'"),
    ("seeds.first=1", "override 'seeds.first=1': seeds is not a mapping in the experiment file"),
])
def test_a_bad_override_is_one_line(text, message):
    with pytest.raises(SpecError, match=message.replace("[", r"\[")):
        apply_overrides({"seeds": [1]}, [text])


def test_run_dry_run_applies_the_overrides(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(DEMO), "seeds=[7]", "strategies=[baseline, front]", "finetune.epochs=1",
                 "--dry-run"]) == 0
    trials = capsys.readouterr().out.split()
    assert len(trials) == 2 and all("_s7_" in t for t in trials)


@pytest.mark.parametrize("override, message", [
    ("finetune.epoch=1", "unknown key in finetune 'epoch'; did you mean epochs?"),
    ("finetune.epochs=0", "finetune.epochs must be an integer from 1 to 1000, got 0"),
    ("seeds=two", "seeds must be an integer from 0 to 4294967295, got 'two'"),
])
def test_an_override_is_validated_like_the_file(tmp_path, capsys, monkeypatch, override, message):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", override, "--dry-run"]) == 2
    assert capsys.readouterr().err == f"alignfreeze: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_an_override_changes_the_trial_ids_as_the_same_edit_of_the_file_would(tmp_path, capsys):
    import yaml

    assert main(["run", str(DEMO), "finetune.epochs=1", "--dry-run"]) == 0
    overridden = capsys.readouterr().out.split()
    edited = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    edited["finetune"]["epochs"] = 1
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(edited), encoding="utf-8")
    assert main(["run", str(path), "--dry-run"]) == 0
    assert capsys.readouterr().out.split() == overridden


def test_plan_takes_overrides(capsys):
    assert main(["plan", str(DEMO), "seeds=[1]", "--json"]) == 0
    import json
    assert [t["trial_id"].split("_")[-2] for t in json.loads(capsys.readouterr().out)["trials"]] == ["s1"] * 4


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("alignfreeze ")
