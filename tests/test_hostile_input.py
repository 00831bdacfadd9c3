"""Hostile input: alias bombs, huge or mis-encoded files, duplicate keys, names that are
paths, ``bundled:`` paths out of the bundled data, YAML booleans and strings where the
other is meant, and Ctrl-C.

Each bad file is refused by ``alignfreeze run FILE --dry-run`` with exit status 2 and
one short line naming the culprit, before anything is written. Ctrl-C during a run
or a search is exit status 130 and one line saying how to resume.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator import cli
from orchestrator.cli import INTERRUPTED, main
from orchestrator.results import RESULTS
from orchestrator.safe_yaml import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "search_spaces" / "demo.yaml"
DEPTH_DEMO = ROOT / "search_spaces" / "demo_depth_search.yaml"
PREFIX = "alignfreeze: error: "
MAX_LINE = 300        # an error line a person reads; the messages here are well under it


@pytest.fixture(scope="module")
def demo_dict() -> dict:
    return yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def refused(tmp_path: Path, capsys, monkeypatch, data: bytes) -> str:
    """Dry-run the file ``data`` from ``tmp_path``: exit 2, one short line, no trial listed,
    nothing written (neither --output nor ./runs); return the message."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "experiment.yaml"
    path.write_bytes(data)
    code = main(["run", str(path), "--dry-run"])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err[:2000]
    assert len(lines) == 1 and lines[0].startswith(PREFIX), captured.err[:2000]
    assert len(lines[0]) < MAX_LINE, lines[0][:2000]
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment.yaml"]
    return lines[0][len(PREFIX):]


def dumped(experiment: dict) -> bytes:
    return yaml.safe_dump(experiment, sort_keys=False, allow_unicode=True).encode("utf-8")


# ----------------------------------------------- values YAML would coerce, names that are paths

def _set(*path_and_value):
    *path, value = path_and_value

    def mutate(experiment: dict) -> None:
        target = experiment
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


VALUE_CASES = {
    # a string is never a boolean (bool("false") is True)
    "freeze_embeddings 'false'": (_set("freeze_embeddings", "false"),
                                  "freeze_embeddings must be true or false, got 'false'"),
    "freeze_embeddings 'no'": (_set("freeze_embeddings", "no"), "freeze_embeddings must be true or false"),
    "freeze_embeddings 1": (_set("freeze_embeddings", 1), "freeze_embeddings must be true or false"),
    "compile 'true'": (_set("compile", "true"), "compile must be true or false"),
    # a string is not a list of languages (read letter by letter: 'f')
    "languages: fr": (_set("languages", "fr"), "languages must be a list of language codes, got the string 'fr'"),
    "languages.pos: fr": (_set("languages", {"pos": "fr"}), "languages.pos must be a list of language codes"),
    "realignment.languages: fr": (_set("realignment", "languages", "fr"),
                                  "realignment.languages must be a list of language codes"),
    "languages: 3": (_set("languages", 3), "languages must be a list of language codes, got 3"),
    # Norwegian read by YAML as false
    "languages: [no]": (_set("languages", ["fr", False]), "quote it: 'no'"),
    "realignment.languages: [no]": (_set("realignment", "languages", [False]), "realignment.languages: YAML read"),
    "languages: [7]": (_set("languages", [7]), "a language code must be a string, got 7"),
    # a boolean is not a number
    "steps: true": (_set("realignment", "steps", True), "realignment.steps must be 'auto' or an integer from 1 to 1000000000, got True"),
    "cpus: 1.7": (_set("resources", {"cpus": 1.7}), "resources.cpus must be an integer from 1 to 4096, got 1.7"),
    "cpus: '2'": (_set("resources", {"cpus": "2"}), "resources.cpus must be an integer from 1 to 4096, got '2'"),
    "cpus: true": (_set("resources", {"cpus": True}), "resources.cpus must be an integer from 1 to 4096, got True"),
    # name decides the results directory under runs/: a name, never a path
    "name absolute": (_set("name", "/tmp/elsewhere"), "name must be a name, not a path"),
    "name ../../..": (_set("name", "../../.."), "got '../../..'"),
    "name a/b": (_set("name", "a/b"), "name must be a name, not a path"),
    "name a\\b": (_set("name", "a\\b"), "name must be a name, not a path"),
    "name .hidden": (_set("name", ".hidden"), "name must be a name, not a path"),
    "name ~": (_set("name", "~"), "name must be a name, not a path"),
    "name with newline": (_set("name", "a\nb"), "name must be a name, not a path"),
    "name 2024": (_set("name", 2024), "name must be a string (quote it: '2024')"),
    "name true": (_set("name", True), "name must be a string"),
    # bundled: stays inside the bundled data (and never shows what it would have read)
    "bundled absolute": (_set("data", "pos", "train", "bundled:/etc/passwd"),
                         "bundled:/etc/passwd: not a bundled file"),
    "bundled ../": (_set("data", "pos", "train", "bundled:../../../../../../../../etc/passwd"),
                    "not a bundled file"),
    "bundled ../ of a real file": (_set("data", "pos", "eval", "fr", "bundled:../bundled.py"), "not a bundled file"),
    "bundled empty": (_set("data", "pos", "train", "bundled:"), "not a bundled file"),
}


@pytest.mark.parametrize("mutate, expected", list(VALUE_CASES.values()), ids=list(VALUE_CASES))
def test_value_is_refused_in_one_line(tmp_path, capsys, monkeypatch, demo_dict, mutate, expected):
    experiment = copy.deepcopy(demo_dict)
    mutate(experiment)
    message = refused(tmp_path, capsys, monkeypatch, dumped(experiment))
    assert expected in message
    assert "root:" not in message          # nothing of /etc/passwd is echoed


def test_a_huge_value_is_not_echoed(tmp_path, capsys, monkeypatch, demo_dict):
    experiment = copy.deepcopy(demo_dict)
    experiment["name"] = "x/" * 50_000
    message = refused(tmp_path, capsys, monkeypatch, dumped(experiment))
    assert "name must be a name, not a path" in message and message.endswith("...")


# ------------------------------------------------------------------------------ the file itself

def test_duplicate_top_level_key_names_key_and_line(tmp_path, capsys, monkeypatch, demo_dict):
    text = dumped(demo_dict).decode()
    text += "models: [mbert]\n"           # the second one is named
    line = len(text.splitlines())
    message = refused(tmp_path, capsys, monkeypatch, text.encode())
    assert message.startswith(f"{tmp_path / 'experiment.yaml'}:{line}: invalid YAML: duplicate key 'models'")


def test_duplicate_nested_key(tmp_path, capsys, monkeypatch, demo_dict):
    text = dumped(demo_dict).decode().replace("finetune:\n", "finetune:\n  epochs: 5\n", 1)
    message = refused(tmp_path, capsys, monkeypatch, text.encode())
    assert "duplicate key 'epochs'" in message


def dry_run_succeeds(tmp_path: Path, capsys, text: str) -> list[str]:
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "--dry-run"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out.splitlines()


def test_anchors_aliases_and_merge_keys_of_a_normal_size_still_work(tmp_path, capsys, demo_dict):
    """``<<: *defaults`` followed by a key of the defaults is an override, not a duplicate."""
    experiment = copy.deepcopy(demo_dict)
    del experiment["finetune"]
    text = dumped(experiment).decode()
    text = text.replace("languages:\n- fr", "languages: &targets\n- fr", 1)
    text = re.sub(r"realignment:\n  languages:\n(  - \w+\n)+", "realignment:\n  languages: *targets\n", text)
    assert "*targets" in text
    text += ("finetune:\n  <<: &defaults {epochs: 2, batch_size: 16, learning_rate: 3.0e-3}\n"
             "  learning_rate: 2.0e-3\n  pos:\n    <<: *defaults\n    epochs: 1\n")
    assert len(dry_run_succeeds(tmp_path, capsys, text)) == 8


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files(tmp_path, capsys, monkeypatch, demo_dict, encoding):
    data = dumped(demo_dict).decode().encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    message = refused(tmp_path, capsys, monkeypatch, data)
    assert message.endswith(f"is {encoding[:6].upper()} text: save it as UTF-8")


def test_latin1_file_names_the_line(tmp_path, capsys, monkeypatch, demo_dict):
    data = dumped(demo_dict) + "description: caf\xe9\n".encode("latin-1")
    line = data.count(b"\n")
    message = refused(tmp_path, capsys, monkeypatch, data)
    assert message == f"{tmp_path / 'experiment.yaml'}:{line}: experiment file is not UTF-8 text (byte 0xe9); save it as UTF-8"


def test_utf8_bom_is_accepted(tmp_path, capsys, monkeypatch, demo_dict):
    experiment = copy.deepcopy(demo_dict)
    experiment["freeze_embeddings"] = "x"     # stop after parsing: the BOM did not get in the way
    message = refused(tmp_path, capsys, monkeypatch, b"\xef\xbb\xbf" + dumped(experiment))
    assert "freeze_embeddings must be true or false" in message


def test_a_file_over_the_size_limit(tmp_path, capsys, monkeypatch, demo_dict):
    data = dumped(demo_dict) + b"# " + b"x" * MAX_FILE_BYTES + b"\n"
    message = refused(tmp_path, capsys, monkeypatch, data)
    assert f"the limit is {MAX_FILE_BYTES:,}" in message


def test_an_alias_referring_to_itself(tmp_path, capsys, monkeypatch, demo_dict):
    message = refused(tmp_path, capsys, monkeypatch, dumped(demo_dict) + b"description: &self [*self]\n")
    assert "invalid YAML: an alias refers to a value that contains it" in message


def test_nesting_too_deep(tmp_path, capsys, monkeypatch):
    message = refused(tmp_path, capsys, monkeypatch, b"name: " + b"[" * 50_000 + b"]" * 50_000 + b"\n")
    assert "invalid YAML" in message


def _bomb() -> str:
    """Seven levels of nine aliases: 4.8 million strings from 600 bytes, as a flow sequence."""
    levels = ["&a [" + ", ".join(["lol"] * 9) + "]"]
    for previous, name in zip("abcdef", "bcdefg"):
        levels.append(f"&{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "[" + ", ".join(levels) + "]"


BOMB_FIELDS = {
    "languages": "languages: {bomb}\n",
    "name": "name: {bomb}\n",
    "aligner_settings": "realignment:\n  aligner_settings: {{k: {bomb}}}\n",
}


BOMB_HEAD = "models: [tiny-mbert]\ntasks: [pos]\nseeds: [1]\nstrategies: [full]\n"
BOMB_MESSAGE = "invalid YAML: more than 100000 values once its aliases are expanded (an alias bomb?)"


def test_alias_bomb_is_refused_at_once(tmp_path):
    """Refused while loading (in a subprocess: a regression hangs or floods stderr rather than fail)."""
    path = tmp_path / "experiment.yaml"
    path.write_text(BOMB_HEAD + BOMB_FIELDS["languages"].format(bomb=_bomb()), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", str(path), "--dry-run"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr[:2000]
    assert len(lines) == 1 and lines[0].startswith(f"{PREFIX}{path}:"), lines[:3]
    assert lines[0].endswith(BOMB_MESSAGE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment.yaml"]


@pytest.mark.parametrize("field", ["name", "aligner_settings"])
def test_alias_bomb_in_any_field(tmp_path, capsys, monkeypatch, field):
    message = refused(tmp_path, capsys, monkeypatch, (BOMB_HEAD + BOMB_FIELDS[field].format(bomb=_bomb())).encode())
    assert message.endswith(BOMB_MESSAGE)


# ------------------------------------------------------------------------------------ Ctrl-C

def _interrupted_fit():
    """What Ray Tune does on the first Ctrl-C: its handler catches SIGINT and the run returns."""
    from ray.tune.tune import _setup_signal_catching

    stopped = _setup_signal_catching()
    os.kill(os.getpid(), signal.SIGINT)
    assert stopped.wait(5)


def test_ctrl_c_during_run_exits_130_with_how_to_resume(tmp_path, capsys, monkeypatch):
    import orchestrator.runner

    def run_experiment(experiment, output, **options):
        output = Path(output).resolve()
        (output / RESULTS).mkdir(parents=True)         # a run directory, no result yet
        _interrupted_fit()
        pending = [t.trial_id for t in experiment.trials]
        return {"planned": len(pending), "ran": len(pending), "errors": 0, "errored": [],
                "missing": pending, "output": str(output), "wall_s": 1.0}

    monkeypatch.setattr(orchestrator.runner, "run_experiment", run_experiment)
    previous = signal.getsignal(signal.SIGINT)
    code = main(["run", str(DEMO), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.splitlines()
    assert signal.getsignal(signal.SIGINT) is previous
    assert code == cli.INTERRUPTED_STATUS == 130
    assert err[-1] == INTERRUPTED and err.count(INTERRUPTED) == 1


def test_trials_without_result_but_no_ctrl_c_are_not_called_an_interruption(tmp_path, capsys, monkeypatch):
    import orchestrator.runner

    def run_experiment(experiment, output, **options):
        output = Path(output).resolve()
        (output / RESULTS).mkdir(parents=True)         # a run directory, no result yet
        return {"planned": 1, "ran": 1, "errors": 0, "errored": [], "missing": ["x"], "output": str(output),
                "wall_s": 1.0}

    monkeypatch.setattr(orchestrator.runner, "run_experiment", run_experiment)
    code = main(["run", str(DEMO), "--output", str(tmp_path / "out")])
    assert code == 1 and INTERRUPTED not in capsys.readouterr().err


def test_second_ctrl_c_exits_130(tmp_path, capsys, monkeypatch):
    import orchestrator.runner

    def run_experiment(experiment, output, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(orchestrator.runner, "run_experiment", run_experiment)
    code = main(["run", str(DEMO), "--output", str(tmp_path / "out")])
    out = (tmp_path / "out").resolve()
    assert code == 130 and capsys.readouterr().err.splitlines() == [
        f"experiment demo: 8 trials -> {out}", f"training curves: tensorboard --logdir {out / 'ray'}", INTERRUPTED]


def test_interrupted_search_exits_130(tmp_path, capsys, monkeypatch):
    import orchestrator.depth_search

    def run_depth_search(experiment, output, **options):
        return {"studies": [], "errored": [], "storage": "sqlite:///x", "output": str(output),
                "interrupted": True, "dashboard": "optuna-dashboard sqlite:///x"}

    monkeypatch.setattr(orchestrator.depth_search, "run_depth_search", run_depth_search)
    code = main(["search", str(DEPTH_DEMO), "--output", str(tmp_path / "out")])
    assert code == 130 and capsys.readouterr().err.splitlines()[-1] == INTERRUPTED


def test_an_unknown_huge_name_is_cut_in_the_message():
    from trainables.errors import unknown_name

    message = str(unknown_name("task", "x" * 5000, ["pos", "ner"]))
    assert len(message) < 150 and message.startswith("unknown task 'xxx") and "..." in message
