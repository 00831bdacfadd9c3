"""Bad input: every user error is one line on stderr and exit status 2, before any trial starts.

Each case mutates the demo experiment, writes it to a temporary YAML file
and runs ``alignfreeze run FILE --dry-run`` (validation only, no Ray).
Bad data files are written under ``tmp_path`` and named by absolute path;
``bundled:`` paths keep working from there.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from trainables.bundled import bundled_path
from trainables.errors import DataError

DEMO = Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"
TRAIN_CONLLU = "ud/en_ewt-ud-dev.first200.conllu"
FR_SOURCE = "parallel/tatoeba/tatoeba.fra-eng.eng.first500"
FR_TARGET = "parallel/tatoeba/tatoeba.fra-eng.fra.first500"
FR_DICTIONARY = "dictionaries/muse/en-fr.first3000.txt"


@pytest.fixture(scope="module")
def demo_dict() -> dict:
    return yaml.safe_load(DEMO.read_text(encoding="utf-8"))


@pytest.fixture
def experiment(demo_dict) -> dict:
    return copy.deepcopy(demo_dict)


def run_dry(tmp_path: Path, capsys, experiment: dict | None = None, text: str | None = None):
    path = tmp_path / "experiment.yaml"
    if text is None:
        text = yaml.safe_dump(experiment, sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "--dry-run"])
    captured = capsys.readouterr()
    return code, captured, path


def error_line(tmp_path: Path, capsys, experiment: dict | None = None, text: str | None = None) -> str:
    """Run the dry run, check the one-line error contract, return the message after the prefix."""
    code, captured, _ = run_dry(tmp_path, capsys, experiment, text)
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("alignfreeze: error: "), lines[0]
    assert captured.out == "", "no trial may be listed after an error"
    return lines[0][len("alignfreeze: error: "):]


def copy_bundled(relative: str, tmp_path: Path, name: str | None = None) -> tuple[Path, list[str]]:
    lines = bundled_path(relative).read_text(encoding="utf-8").splitlines(keepends=True)
    target = tmp_path / (name or Path(relative).name)
    return target, lines


def token_line_numbers(lines: list[str]) -> list[int]:
    return [n for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")]


# ------------------------------------------------------------------ control

def test_the_unmodified_demo_validates(tmp_path, capsys, experiment):
    code, captured, _ = run_dry(tmp_path, capsys, experiment)
    assert code == 0, captured.err
    assert len(captured.out.splitlines()) == 8


# --------------------------------------------------------------------- YAML

def test_yaml_syntax_error_names_file_and_line(tmp_path, capsys, experiment):
    lines = yaml.safe_dump(experiment, sort_keys=False).splitlines()
    number = next(n for n, line in enumerate(lines, 1) if line.startswith("tasks:"))
    lines[number - 1] = "tasks: pos: ner"          # mapping values are not allowed here
    message = error_line(tmp_path, capsys, text="\n".join(lines) + "\n")
    assert message.startswith(f"{tmp_path / 'experiment.yaml'}:{number}: invalid YAML")


def test_yaml_that_is_not_a_mapping(tmp_path, capsys):
    message = error_line(tmp_path, capsys, text="- models\n- tasks\n")
    assert "an experiment file is a mapping of keys (models, tasks, seeds, ...), got list" in message


def test_missing_experiment_file(tmp_path, capsys):
    missing = tmp_path / "nowhere.yaml"
    code = main(["run", str(missing), "--output", str(tmp_path / "out"), "--dry-run"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == f"alignfreeze: error: {missing}: experiment file not found"


def test_top_level_key_typo_suggests_the_key(tmp_path, capsys, experiment):
    experiment["seed"] = experiment.pop("seeds")
    message = error_line(tmp_path, capsys, experiment)
    assert "'seed'" in message and "did you mean seeds" in message


@pytest.mark.parametrize("where, key, suggestion", [
    ("realignment", "step", "steps"),
    ("finetune", "epoch", "epochs"),
    ("finetune.pos", "batchsize", "batch_size"),
    ("data.pos", "evals", "eval"),
    ("data", "postag", "pos"),
    ("resources", "cpu", "cpus"),
])
def test_unknown_nested_key_names_where_and_key(tmp_path, capsys, experiment, where, key, suggestion):
    node = experiment
    for part in where.split("."):
        node = node.setdefault(part, {})
    node[key] = 1
    message = error_line(tmp_path, capsys, experiment)
    assert f"in {where} {key!r}" in message
    assert f"did you mean {suggestion}" in message


# -------------------------------------------------------------------- names

def test_unknown_model_fails_fast_offline(tmp_path, capsys, experiment):
    experiment["models"] = ["no-such-org/no-such-model"]
    started = time.perf_counter()
    message = error_line(tmp_path, capsys, experiment)
    assert time.perf_counter() - started < 10
    assert message.startswith("unknown model 'no-such-org/no-such-model'")


def test_unknown_task(tmp_path, capsys, experiment):
    experiment["tasks"] = ["postag"]
    message = error_line(tmp_path, capsys, experiment)
    assert "unknown task 'postag'" in message and "did you mean pos" in message


def test_unknown_strategy(tmp_path, capsys, experiment):
    experiment["strategies"] = ["baseline", "middle"]
    message = error_line(tmp_path, capsys, experiment)
    assert message.startswith("unknown strategy 'middle'")
    assert "front:K" in message


def test_unknown_aligner(tmp_path, capsys, experiment):
    experiment["aligners"] = ["dicco"]
    message = error_line(tmp_path, capsys, experiment)
    assert "unknown aligner 'dicco'" in message and "did you mean dico" in message


def test_front_count_beyond_the_model(tmp_path, capsys, experiment):
    experiment["strategies"] = ["front:9"]
    message = error_line(tmp_path, capsys, experiment)
    assert "front:9" in message and "K=9" in message and "4 blocks" in message


def test_range_beyond_the_model(tmp_path, capsys, experiment):
    experiment["strategies"] = ["range:0-9"]
    message = error_line(tmp_path, capsys, experiment)
    assert "range:0-9" in message and "<= 5" in message and "4 blocks" in message


# ---------------------------------------------------------------- languages

def test_unknown_target_language(tmp_path, capsys, experiment):
    experiment["languages"] = ["fr", "xx"]
    message = error_line(tmp_path, capsys, experiment)
    assert message.startswith("unknown target language 'xx'")


def test_unknown_realignment_language(tmp_path, capsys, experiment):
    experiment["realignment"]["languages"] = ["fr", "xx"]
    message = error_line(tmp_path, capsys, experiment)
    assert message.startswith("unknown realignment language 'xx'")


def test_unknown_language_as_data_key(tmp_path, capsys, experiment):
    experiment["data"]["pos"]["eval"]["xx"] = experiment["data"]["pos"]["eval"]["fr"]
    message = error_line(tmp_path, capsys, experiment)
    assert message.startswith("unknown language in data.pos.eval 'xx'")


def test_english_is_not_a_target(tmp_path, capsys, experiment):
    experiment["languages"] = ["en", "fr"]
    message = error_line(tmp_path, capsys, experiment)
    assert "'en' is the training language, not a target" in message


def test_target_language_without_eval_data(tmp_path, capsys, experiment):
    del experiment["data"]["pos"]["eval"]["ja"]
    message = error_line(tmp_path, capsys, experiment)
    assert "no evaluation data for language 'ja'" in message and "data.pos.eval.ja" in message


def test_dico_without_dictionary_for_a_language(tmp_path, capsys, experiment):
    del experiment["realignment"]["dictionaries"]["ja"]
    message = error_line(tmp_path, capsys, experiment)
    assert message == "realignment: aligner 'dico' has no dictionary for language 'ja'"


def test_realignment_language_without_parallel_data(tmp_path, capsys, experiment):
    del experiment["realignment"]["parallel"]["ja"]
    message = error_line(tmp_path, capsys, experiment)
    assert message == "realignment: no parallel data for language 'ja'"


# -------------------------------------------------------------------- seeds

@pytest.mark.parametrize("seed", ["two", 1.5, True])
def test_non_integer_seed(tmp_path, capsys, experiment, seed):
    experiment["seeds"] = [1, seed]
    message = error_line(tmp_path, capsys, experiment)
    assert message == f"seeds must be an integer from 0 to 4294967295, got {seed!r}" + (
        " (YAML reads yes, no, on, off, true and false as booleans)" if seed is True else "")


# ------------------------------------------------------- missing data files

def test_missing_training_file(tmp_path, capsys, experiment):
    missing = tmp_path / "no-such-train.conllu"
    experiment["data"]["pos"]["train"] = str(missing)
    message = error_line(tmp_path, capsys, experiment)
    assert message == f"{missing}: file or directory not found"


def test_missing_bundled_file(tmp_path, capsys, experiment):
    experiment["data"]["pos"]["eval"]["fr"] = "bundled:ud/no-such-file.conllu"
    message = error_line(tmp_path, capsys, experiment)
    assert message == "bundled:ud/no-such-file.conllu: no such bundled file"


def test_missing_directory(tmp_path, capsys, experiment):
    missing = tmp_path / "no-such-dir" / "ud"
    experiment["data"]["pos"]["eval"]["fr"] = str(missing)
    message = error_line(tmp_path, capsys, experiment)
    assert message == f"{missing}: file or directory not found"


def test_relative_path_is_resolved_against_the_experiment_file(tmp_path, capsys, experiment):
    experiment["realignment"]["dictionaries"]["fr"] = "dicts/en-fr.txt"
    message = error_line(tmp_path, capsys, experiment)
    assert message == "dicts/en-fr.txt: file or directory not found"


def test_directory_without_treebank_files(tmp_path, capsys, experiment):
    empty = tmp_path / "empty-treebank"
    empty.mkdir()
    experiment["data"]["pos"]["eval"]["fr"] = str(empty)
    message = error_line(tmp_path, capsys, experiment)
    assert message == f"{empty}: no *-ud-test.conllu file in treebank directory"


def test_missing_parallel_file(tmp_path, capsys, experiment):
    missing = tmp_path / "missing.fra"
    experiment["realignment"]["parallel"]["fr"]["target"] = str(missing)
    message = error_line(tmp_path, capsys, experiment)
    assert message == f"{missing}: file or directory not found"


# ---------------------------------------- malformed data files (pre-flight)

@pytest.mark.parametrize("role", ["train", "eval"])
def test_malformed_conllu_line_is_caught_before_trials(tmp_path, capsys, experiment, role):
    bad, lines = copy_bundled(TRAIN_CONLLU, tmp_path, "bad.conllu")
    number = token_line_numbers(lines)[-1]            # the very last token line: no read limit hides it
    lines[number - 1] = "\t".join(lines[number - 1].rstrip("\n").split("\t")[:9]) + "\n"
    bad.write_text("".join(lines), encoding="utf-8")
    if role == "train":
        experiment["data"]["pos"]["train"] = str(bad)
    else:
        experiment["data"]["pos"]["eval"]["de"] = str(bad)
    message = error_line(tmp_path, capsys, experiment)
    assert message == f"{bad}:{number}: expected 10 tab-separated columns, found 9"


def test_unknown_upos_tag(tmp_path, capsys, experiment):
    bad, lines = copy_bundled(TRAIN_CONLLU, tmp_path, "bad-tag.conllu")
    number = token_line_numbers(lines)[10]
    columns = lines[number - 1].split("\t")
    columns[3] = "NOUNN"
    lines[number - 1] = "\t".join(columns)
    bad.write_text("".join(lines), encoding="utf-8")
    experiment["data"]["pos"]["train"] = str(bad)
    message = error_line(tmp_path, capsys, experiment)
    assert message == f"{bad}:{number}: unknown UPOS tag 'NOUNN'"


def test_data_file_that_is_not_utf8(tmp_path, capsys, experiment):
    bad = tmp_path / "latin1.conllu"
    bad.write_bytes(bundled_path(TRAIN_CONLLU).read_bytes() + "1\tcaf\xe9\n".encode("latin-1"))
    experiment["data"]["pos"]["train"] = str(bad)
    message = error_line(tmp_path, capsys, experiment)
    assert message.startswith(f"{bad}: not UTF-8 text")


def test_mismatched_parallel_files_are_caught_before_trials(tmp_path, capsys, experiment):
    short, lines = copy_bundled(FR_TARGET, tmp_path)
    short.write_text("".join(lines[:-1]), encoding="utf-8")
    source = str(bundled_path(FR_SOURCE))
    experiment["realignment"]["parallel"]["fr"]["target"] = str(short)
    message = error_line(tmp_path, capsys, experiment)
    assert message == (f"{source}: parallel files differ in length: {len(lines)} lines vs "
                       f"{len(lines) - 1} in {short}")


def test_malformed_tsv_parallel_line(tmp_path, capsys, experiment):
    english = bundled_path(FR_SOURCE).read_text(encoding="utf-8").splitlines()
    french = bundled_path(FR_TARGET).read_text(encoding="utf-8").splitlines()
    rows = [f"{e}\t{f}" for e, f in zip(english, french)]
    rows[-2] = rows[-2].replace("\t", " ")                 # one field only
    bad = tmp_path / "en-fr.tsv"
    bad.write_text("\n".join(rows) + "\n", encoding="utf-8")
    experiment["realignment"]["parallel"]["fr"] = str(bad)
    message = error_line(tmp_path, capsys, experiment)
    assert message == f"{bad}:{len(rows) - 1}: expected 'english<TAB>translation', found 1 fields"


def test_malformed_dictionary_line_is_caught_before_trials(tmp_path, capsys, experiment):
    bad, lines = copy_bundled(FR_DICTIONARY, tmp_path)
    number = len(lines) - 5
    lines[number - 1] = "three words here\n"
    bad.write_text("".join(lines), encoding="utf-8")
    experiment["realignment"]["dictionaries"]["fr"] = str(bad)
    message = error_line(tmp_path, capsys, experiment)
    assert message.startswith(f"{bad}:{number}: expected 'english<TAB>translation'")
    assert "three words here" in message


def test_dictionaries_are_not_read_by_a_baseline_only_grid(tmp_path, capsys, experiment):
    """Data that no trial reads is not checked (a baseline does not realign)."""
    bad, lines = copy_bundled(FR_DICTIONARY, tmp_path)
    bad.write_text("three words here\n", encoding="utf-8")
    experiment["realignment"]["dictionaries"]["fr"] = str(bad)
    experiment["strategies"] = ["baseline"]
    code, captured, _ = run_dry(tmp_path, capsys, experiment)
    assert code == 0, captured.err


# ------------------------------------------- malformed file during a trial

def test_malformed_file_read_during_a_trial_is_a_data_error_with_file_and_line(tmp_path):
    """A file that goes bad after validation (or a spec built without the pre-flight)."""
    from trainables.trial import run_trial
    from trainables.trial_spec import TrialSpec, validate

    bad, lines = copy_bundled(TRAIN_CONLLU, tmp_path, "bad.conllu")
    number = token_line_numbers(lines)[-1]
    lines[number - 1] = lines[number - 1].replace("\t", " ", 1)   # 9 columns
    bad.write_text("".join(lines), encoding="utf-8")
    evaluation = str(bundled_path("ud/fr_gsd-ud-test.first100.conllu"))
    spec = validate(TrialSpec(model="tiny-mbert", task="pos", strategy="baseline", seed=1, languages=("fr",),
                              data={"train": str(bad), "eval": {"en": evaluation, "fr": evaluation}},
                              finetune={"epochs": 1}, device="cpu"))
    with pytest.raises(DataError) as raised:
        run_trial(spec, checkpoint_root=tmp_path / "ckpt", log=lambda _: None)
    assert raised.value.path == bad and raised.value.line == number
    assert str(raised.value) == f"{bad}:{number}: expected 10 tab-separated columns, found 9"


def test_qa_stride_that_leaves_no_room_is_refused_before_trials():
    from orchestrator.experiment import experiment_from_dict
    from trainables.errors import SpecError
    from trial_fixtures import small_pos_experiment

    raw = small_pos_experiment(tasks=["qa"], strategies=["baseline"], languages=["de"])
    raw["data"] = {"qa": {"train": "bundled:qa/tydiqa_goldp_en_train.first300.json",
                          "eval": {"en": "bundled:qa/xquad/xquad.en.first2articles.json",
                                   "de": "bundled:qa/xquad/xquad.de.first2articles.json"}}}
    raw["finetune"] = {"qa": {"eval_max_length": 96}}     # default eval_doc_stride 128
    with pytest.raises(SpecError, match="qa eval_doc_stride 128 must be smaller than eval_max_length 96"):
        experiment_from_dict(raw)
