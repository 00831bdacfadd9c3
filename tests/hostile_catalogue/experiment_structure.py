"""Experiment files whose structure or YAML is hostile: aliases, duplicates, encodings,
names that are paths, paths out of the bundled data, lists that are strings, a grid far
too large. Each is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

from hostile_catalogue import Case
from hostile_catalogue.common import demo, dry_run, setting, write_experiment


def _text(text: str, *extra: str):
    """A dry run of the experiment file ``text`` (bytes when it must not be UTF-8)."""
    def argv(directory: Path) -> list[str]:
        path = directory / "experiment.yaml"
        (path.write_bytes if isinstance(text, bytes) else lambda t: path.write_text(t, encoding="utf-8"))(text)
        return ["run", str(path), "--dry-run", *extra]
    return argv


def _demo_text() -> str:
    import yaml
    return yaml.safe_dump(demo(), sort_keys=False)


def _bomb(field: str) -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [*{previous},*{previous},*{previous},*{previous},*{previous},"
                     f"*{previous},*{previous},*{previous},*{previous},*{previous}]")
    return "anchors_only:\n" + "\n".join("  " + line for line in lines) + f"\n{field}: *i\n"


def _removed(*path: str):
    def change(experiment: dict) -> None:
        target = experiment
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


def _huge_grid(directory: Path) -> list[str]:
    experiment = demo()
    experiment["seeds"] = list(range(520))           # 4 trials a seed: 2080 trials
    return ["run", str(write_experiment(directory, experiment))]


def _missing_file(directory: Path) -> list[str]:
    return ["run", str(directory / "nowhere.yaml"), "--dry-run"]


def _search_file_with_run(directory: Path) -> list[str]:
    from hostile_catalogue.common import DEPTH_DEMO
    import yaml
    return ["run", str(write_experiment(directory, yaml.safe_load(DEPTH_DEMO.read_text(encoding="utf-8")))),
            "--dry-run"]


def _parallel(entry: dict):
    def change(experiment: dict) -> None:
        experiment["realignment"]["languages"] = ["fr"]
        experiment["languages"] = ["fr"]
        experiment["data"]["pos"]["eval"] = {k: v for k, v in experiment["data"]["pos"]["eval"].items()
                                             if k in ("en", "fr")}
        experiment["realignment"]["parallel"] = {"fr": entry}
    return change


FR_SOURCE = "bundled:parallel/tatoeba/tatoeba.fra-eng.eng.first500"
FR_TARGET = "bundled:parallel/tatoeba/tatoeba.fra-eng.fra.first500"

CASES = [
    # YAML itself
    Case("alias bomb in name", _text(_bomb("name")), "more than 100000 values"),
    Case("alias bomb in languages", _text(_bomb("languages")), "more than 100000 values"),
    Case("alias bomb in description", _text(_bomb("description")), "more than 100000 values"),
    Case("duplicate top-level key", _text(_demo_text() + "seeds: [3]\n"), "duplicate key 'seeds'"),
    Case("UTF-16 file", _text(_demo_text().encode("utf-16")), "UTF-16"),
    Case("Latin-1 file", _text(("description: caf\u00e9\n" + _demo_text()).encode("latin-1")), "UTF-8"),
    Case("over 1 MiB", _text("description: " + "x" * (1 << 20) + "\n"), "the limit is 1,048,576"),
    Case("not a mapping", _text("- tiny-mbert\n- pos\n"), "experiment.yaml: an experiment file is a mapping of keys (models, tasks, seeds, ...), got list"),
    Case("empty file", _text(""), "experiment.yaml: an experiment file is a mapping of keys (models, tasks, seeds, ...), got an empty file"),
    Case("YAML syntax error", _text("models: [tiny-mbert\ntasks: pos\n"), "experiment.yaml:2: invalid YAML"),
    Case("missing experiment file", _missing_file, "nowhere.yaml"),
    # names and paths
    Case("name is an absolute path", dry_run(setting("name", "/tmp/elsewhere")), "name must be a name, not a path"),
    Case("name climbs out", dry_run(setting("name", "../../..")), "name must be a name, not a path"),
    Case("name is a number", dry_run(setting("name", 2024)), "name must be a string"),
    Case("bundled: absolute", dry_run(setting("data", "pos", "train", "bundled:/etc/passwd")), "bundled"),
    Case("bundled: climbs out", dry_run(setting("data", "pos", "train", "bundled:../../../../etc/passwd")),
         "bundled"),
    Case("unset environment variable", dry_run(setting("data", "pos", "train", "${ALIGNFREEZE_NOT_SET_X}/a")),
         "environment variable ALIGNFREEZE_NOT_SET_X is not set"),
    # lists and names
    Case("languages as a string", dry_run(setting("languages", "fr")), "languages must be a list of language codes"),
    Case("Norwegian no unquoted", dry_run(setting("languages", [False])), "quote it: 'no'"),
    Case("yes as a language", dry_run(setting("languages", [True])), "quote the language code"),
    Case("a model that is a number", dry_run(setting("models", [123])), "models: a name must be a non-empty string"),
    Case("unknown top-level key", dry_run(setting("seed", [1])), "unknown key in experiment 'seed'; did you mean seeds"),
    Case("unknown strategy", dry_run(setting("strategies", ["baseline", "middle"])), "unknown strategy 'middle'"),
    Case("freezing beyond the model", dry_run(setting("strategies", ["front:99"])), "front:99"),
    Case("unknown aligner", dry_run(setting("aligners", ["magic"])), "magic"),
    Case("English as a target", dry_run(setting("languages", ["fr", "en"])), "'en' is the training language"),
    Case("no seeds", dry_run(_removed("seeds")), "'seeds' is required"),
    Case("unknown data key", dry_run(setting("data", "pos", "test", "x")), "unknown key in data.pos 'test'"),
    Case("strategies and search", dry_run(setting("search", {"trials": 2})), "exclude each other"),
    Case("search file given to run", _search_file_with_run, "has a 'search' section"),
    # parallel data entries
    Case("parallel entry with an extra key", dry_run(_parallel({"source": FR_SOURCE, "target": FR_TARGET,
                                                                  "tsv": True})),
         "unknown key in realignment.parallel.fr 'tsv'"),
    Case("parallel entry without target", dry_run(_parallel({"source": FR_SOURCE})),
         "realignment.parallel.fr must be a location (hub, a TSV file) or {source: FILE, target: FILE}"),
    Case("parallel entry that is a number", dry_run(_parallel(3)), "realignment.parallel.fr"),
    # size
    Case("2080 trials without --yes", _huge_grid, "2080 trials, more than 2000"),
]


def _with_overrides(*overrides: str):
    def argv(directory: Path) -> list[str]:
        return ["run", str(write_experiment(directory, demo())), *overrides, "--dry-run"]
    return argv


CASES += [
    Case("override without =", _with_overrides("seeds"), "override 'seeds': expected KEY=VALUE"),
    Case("override of a misspelt key", _with_overrides("finetune.epoch=1"),
         "unknown key in finetune 'epoch'; did you mean epochs?"),
    Case("override value out of range", _with_overrides("finetune.warmup_ratio=5"),
         "finetune.warmup_ratio must be a number from 0 to 1, got 5"),
    Case("override alias bomb", _with_overrides("description=" + "[" * 100_000), "override description"),
    Case("override into a list", _with_overrides("seeds.first=1"), "seeds is not a mapping"),
]
