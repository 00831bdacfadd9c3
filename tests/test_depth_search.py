"""The Optuna depth search: its space, its settings, and the ask / run / tell loop.

The loop is driven here with a fake trial session that writes result files
with known values (no Ray, no training), so every told value, every trial
run and every resumption can be checked exactly. The same loop on Ray is
tested (slow) at the end.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from orchestrator import results as results_dir
from orchestrator.cli import main
from orchestrator.depth_search import default_storage, run_depth_search, study_name
from orchestrator.experiment import experiment_from_dict
from search_spaces.freezing_depth import FreezingDepthSpace
from trainables.errors import SpecError
from trial_fixtures import small_pos_experiment

ALL_SEVEN = ["full", "front:1", "back:1", "front:2", "back:2", "front:3", "back:3"]


def known_value(strategy: str, seed: int) -> float:
    """The fake target average: deeper is better, back beats front, seeds differ a little."""
    if strategy == "baseline":
        return 0.30 + 0.001 * seed
    depth = 0 if strategy == "full" else int(strategy.split(":")[1])
    return 0.40 + 0.02 * depth + (0.01 if strategy.startswith("back") else 0.0) + 0.001 * seed


class FakeSession:
    """Stands in for ``TrialSession``: 'runs' a batch by writing result files."""

    def __init__(self, output, ray_options, resources, address=None, verbose=0, *, checkpoint=None,
                 runs=None, batches=None, fail=(), stop=(), interrupt_after=None):
        self.output = Path(output)
        self.runs = runs if runs is not None else []
        self.batches = batches if batches is not None else []
        self.fail = set(fail)
        self.stop = set(stop)
        self.interrupt_after = interrupt_after

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def run(self, specs):
        self.batches.append([spec.trial_id for spec in specs])
        done = results_dir.completed_ids(self.output)
        errored, missing = [], []
        for spec in specs:
            if spec.trial_id in done:
                continue
            if self.interrupt_after is not None and len(self.runs) >= self.interrupt_after:
                raise KeyboardInterrupt
            if spec.strategy in self.stop:     # as Tune after Ctrl-C: no result, no error
                missing.append(spec.trial_id)
                continue
            self.runs.append(spec.trial_id)
            if spec.strategy in self.fail:
                results_dir.write_error(self.output, spec.trial_id, spec.to_dict(), "boom")
                errored.append(spec.trial_id)
                missing.append(spec.trial_id)
                continue
            results_dir.write_result(self.output, {"trial_id": spec.trial_id, "spec": spec.to_dict(),
                                                   "average": {"accuracy": known_value(spec.strategy, spec.seed)}})
        return {"errored": errored, "missing": missing}


def session_factory(**options):
    runs: list[str] = []
    batches: list[list[str]] = []

    def factory(*args, **kwargs):
        return FakeSession(*args, **kwargs, runs=runs, batches=batches, **options)

    factory.runs = runs
    factory.batches = batches
    return factory


def search_experiment(search=None, seeds=(3, 4), **overrides):
    raw = small_pos_experiment(seeds=list(seeds), **overrides)
    raw.pop("strategies")
    raw["search"] = {"depths": [0, 3], "sampler": "grid", "trials": 7, **(search or {})}
    return experiment_from_dict(raw)


def study_of(output: Path, experiment) -> optuna.Study:
    key = next(iter(experiment.candidates))
    return optuna.load_study(study_name=study_name(experiment.name, key), storage=default_storage(output))


def quiet(line):
    return None


# ------------------------------------------------------------------ the space

def test_space_lists_each_frozen_set_once():
    space = FreezingDepthSpace(("front", "back"), 0, 4)
    # depth 0 is full realignment from either side; 4 of 4 blocks is the same set from either side
    assert space.strategies(4) == ["full", "front:1", "back:1", "front:2", "back:2", "front:3", "back:3", "front:4"]
    assert FreezingDepthSpace().depth_range(12) == (0, 11)
    assert FreezingDepthSpace(("back",), 2, None).strategies(4) == ["back:2", "back:3"]
    assert space.strategy_of_params({"side": "back", "depth": 0}, 4) == "full"
    for strategy in space.strategies(4):
        assert space.strategy_of_params(space.params_of(strategy), 4) == strategy


def test_experiment_enumerates_candidates_per_study():
    experiment = search_experiment()
    [key] = experiment.candidates
    assert key == ("tiny-mbert", "pos", "dico", "before")
    assert list(experiment.candidates[key]) == ALL_SEVEN
    assert all([s.seed for s in specs] == [3, 4] for specs in experiment.candidates[key].values())
    assert [(t.strategy, t.seed) for t in experiment.trials] == [("baseline", 3), ("baseline", 4)]
    assert experiment.candidates[key]["back:2"][0].freeze_spec == "back:2"


# --------------------------------------------------------------- bad settings

@pytest.mark.parametrize("change, message", [
    ({"search": {"trails": 3}}, "unknown key in search 'trails'"),
    ({"search": {"sides": ["middle"]}}, "unknown side in search.sides 'middle'"),
    ({"search": {"depths": [0, 9]}}, "search.depths [0, 9] outside 0..4 for tiny-mbert (4 blocks)"),
    ({"search": {"depths": [3, 1]}}, "search.depths: highest 1 is below lowest 3"),
    ({"search": {"depths": 2}}, "search.depths must be [lowest, highest]"),
    ({"search": {"sampler": "cmaes"}}, "unknown sampler in search.sampler 'cmaes'"),
    ({"search": {"trials": 0}}, "search.trials must be an integer >= 1, got 0"),
    ({"search": {"parallel": 1.5}}, "search.parallel must be an integer >= 1"),
    ({"search": {"metric": "f1"}}, "unknown metric of task pos in search.metric 'f1'"),
    ({"search": {"storage": "optuna.db"}}, "search.storage must be an Optuna storage URL"),
    ({"strategies": ["baseline"]}, "'strategies' and 'search' exclude each other"),
])
def test_bad_search_settings_are_one_line_errors(change, message):
    raw = small_pos_experiment()
    raw.pop("strategies")
    raw["search"] = {}
    for key, value in change.items():
        raw[key] = value
    with pytest.raises(SpecError) as error:
        experiment_from_dict(raw)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_run_and_search_refuse_each_others_files(tmp_path, capsys):
    search_file = tmp_path / "search.yaml"
    raw = small_pos_experiment()
    raw.pop("strategies")
    raw["search"] = {"trials": 2}
    search_file.write_text(yaml.safe_dump(raw))
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump(small_pos_experiment()))
    assert main(["run", str(search_file), "--output", str(tmp_path / "a")]) == 2
    assert "has a 'search' section: run it with alignfreeze search" in capsys.readouterr().err
    assert main(["search", str(grid_file), "--output", str(tmp_path / "b")]) == 2
    assert "has no 'search' section" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ------------------------------------------------------------------- the loop

def test_grid_search_evaluates_every_setting_once_and_tells_the_seed_mean(tmp_path):
    experiment = search_experiment()
    factory = session_factory()
    outcome = run_depth_search(experiment, tmp_path, session_factory=factory, log=quiet)
    [summary] = outcome["studies"]
    assert outcome["errored"] == []
    # every trial ran exactly once: 2 baselines + 7 settings x 2 seeds
    assert len(factory.runs) == len(set(factory.runs)) == 2 + 7 * 2
    study = study_of(tmp_path, experiment)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    for trial in complete:
        strategy = trial.user_attrs["strategy"]
        assert trial.value == statistics.fmean([known_value(strategy, 3), known_value(strategy, 4)])
    assert sorted(row["strategy"] for row in summary["evaluated"]) == sorted(ALL_SEVEN)
    assert summary["best"]["strategy"] == "back:3"
    assert summary["best"]["mean"] == pytest.approx(0.40 + 0.06 + 0.01 + 0.0035)
    assert summary["best"]["std"] == pytest.approx(0.0005)
    assert summary["baseline"]["mean"] == pytest.approx(0.3035)
    assert [row["mean"] for row in summary["evaluated"]] == sorted((row["mean"] for row in summary["evaluated"]),
                                                                   reverse=True)
    written = json.loads((tmp_path / "search" / "tiny-mbert_pos_dico_before.json").read_text())
    assert written["best"]["strategy"] == "back:3"
    # the manifest lists what was planned: the baselines and every evaluated trial, nothing else
    planned = {t["trial_id"] for t in results_dir.read_manifest(tmp_path)["trials"]}
    assert planned == set(factory.runs)


def test_tpe_search_stops_at_its_budget_of_distinct_settings(tmp_path):
    experiment = search_experiment({"sampler": "tpe", "trials": 3, "parallel": 2})
    factory = session_factory()
    [summary] = run_depth_search(experiment, tmp_path, session_factory=factory, log=quiet)["studies"]
    assert len(summary["evaluated"]) == 3
    assert len(factory.runs) == 2 + 3 * 2 == len(set(factory.runs))
    # a larger budget on the same directory adds settings; nothing already run runs again
    factory_more = session_factory()
    experiment = search_experiment({"sampler": "tpe", "trials": 5, "parallel": 2})
    [summary] = run_depth_search(experiment, tmp_path, session_factory=factory_more, log=quiet)["studies"]
    assert len(summary["evaluated"]) == 5
    assert len(factory_more.runs) == 2 * 2 and not set(factory_more.runs) & set(factory.runs)


def test_a_failed_setting_is_told_fail_and_not_run_again(tmp_path):
    experiment = search_experiment()
    factory = session_factory(fail={"back:1"})
    outcome = run_depth_search(experiment, tmp_path, session_factory=factory, log=quiet)
    [summary] = outcome["studies"]
    assert summary["failed"] == ["back:1"]
    assert "back:1" not in {row["strategy"] for row in summary["evaluated"]}
    assert len(summary["evaluated"]) == 6
    failing = [t.trial_id for t in experiment.candidates[next(iter(experiment.candidates))]["back:1"]]
    assert sorted(outcome["errored"]) == sorted(failing)
    assert sum(run in failing for run in factory.runs) == 2      # once per seed, never retried
    study = study_of(tmp_path, experiment)
    assert sum(t.state == TrialState.FAIL for t in study.trials) >= 1
    # the next run retries it once (as `alignfreeze run` retries errored trials)
    retry = session_factory()
    lines: list[str] = []
    outcome = run_depth_search(experiment, tmp_path, session_factory=retry, log=lines.append)
    assert any("retrying 1 setting(s)" in line for line in lines)
    assert sorted(retry.runs) == sorted(failing)
    assert outcome["errored"] == [] and outcome["studies"][0]["failed"] == []
    assert len(outcome["studies"][0]["evaluated"]) == 7


def test_a_stopped_batch_leaves_its_setting_to_the_next_run(tmp_path):
    experiment = search_experiment()
    stopped = session_factory(stop={"front:1"})
    outcome = run_depth_search(experiment, tmp_path, session_factory=stopped, log=quiet)
    assert outcome["interrupted"] and outcome["errored"] == []
    study = study_of(tmp_path, experiment)
    [running] = [t for t in study.trials if t.state == TrialState.RUNNING]
    assert running.user_attrs["strategy"] == "front:1"
    assert not [t for t in study.trials if t.state == TrialState.FAIL]
    resumed = session_factory()
    outcome = run_depth_search(experiment, tmp_path, session_factory=resumed, log=quiet)
    assert not outcome["interrupted"]
    assert len(outcome["studies"][0]["evaluated"]) == 7
    assert study_of(tmp_path, experiment).trials[running.number].state == TrialState.COMPLETE


def test_an_interrupted_search_resumes_the_setting_it_was_running(tmp_path):
    experiment = search_experiment({"sampler": "tpe", "trials": 3})
    # the driver dies after 2 baselines + 1 setting (2 seeds) + the first seed of the second setting
    crashing = session_factory(interrupt_after=5)
    with pytest.raises(KeyboardInterrupt):
        run_depth_search(experiment, tmp_path, session_factory=crashing, log=quiet)
    study = study_of(tmp_path, experiment)
    [running] = [t for t in study.trials if t.state == TrialState.RUNNING]
    interrupted = FreezingDepthSpace(("front", "back"), 0, 3).strategy_of_params(
        running.params, 4)
    assert len(crashing.runs) == 5

    resumed = session_factory()
    lines: list[str] = []
    [summary] = run_depth_search(experiment, tmp_path, session_factory=resumed, log=lines.append)["studies"]
    assert any("resuming 1 setting(s)" in line for line in lines)
    study = study_of(tmp_path, experiment)
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert study.trials[running.number].state == TrialState.COMPLETE
    assert study.trials[running.number].value == statistics.fmean(
        [known_value(interrupted, 3), known_value(interrupted, 4)])
    # the interrupted setting's first seed was not run again; its second seed and one new setting were
    assert not set(resumed.runs) & set(crashing.runs)
    assert len(resumed.runs) == 1 + 2
    assert len(summary["evaluated"]) == 3


def test_other_search_settings_on_the_same_directory_are_refused(tmp_path):
    run_depth_search(search_experiment({"trials": 2}), tmp_path, session_factory=session_factory(), log=quiet)
    with pytest.raises(SpecError, match="holds a different experiment"):
        run_depth_search(search_experiment({"trials": 2, "seed": 1}), tmp_path,
                         session_factory=session_factory(), log=quiet)
    with pytest.raises(SpecError, match="holds a different experiment"):
        run_depth_search(search_experiment({"trials": 2}, seeds=(3,)), tmp_path,
                         session_factory=session_factory(), log=quiet)


# --------------------------------------------------------------- through Ray

@pytest.mark.slow
def test_depth_search_on_ray_tells_optuna_the_trials_results(tmp_path, capsys):
    raw = small_pos_experiment()
    raw.pop("strategies")
    raw["search"] = {"trials": 2, "depths": [1, 2], "sides": ["back"], "sampler": "grid"}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw))
    output = tmp_path / "out"
    assert main(["search", str(path), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "back:1" in out and "back:2" in out and "baseline" in out
    results = {r["trial_id"]: r for r in results_dir.read_results(output)}
    assert len(results) == 3                                     # baseline + 2 settings, 1 seed
    experiment = experiment_from_dict(raw, base=tmp_path)
    study = study_of(output, experiment)
    for trial in study.trials:
        [spec] = experiment.candidates[next(iter(experiment.candidates))][trial.user_attrs["strategy"]]
        assert trial.value == results[spec.trial_id]["average"]["accuracy"]
    from analysis.results import run_directory_results

    loaded = run_directory_results(output)
    assert not loaded.missing and not loaded.errored
    assert set(loaded.table["strategy"]) == {"baseline", "back:1", "back:2"}


def test_a_shared_storage_refuses_a_study_made_with_other_settings(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    run_depth_search(search_experiment({"trials": 1, "storage": storage}), tmp_path / "a",
                     session_factory=session_factory(), log=quiet)
    factory = session_factory()
    with pytest.raises(SpecError, match="was made with other search settings"):
        run_depth_search(search_experiment({"trials": 1, "storage": storage, "sides": ["back"]}), tmp_path / "b",
                         session_factory=factory, log=quiet)
    assert factory.runs == []          # refused before the baselines ran


def test_studies_share_each_round(tmp_path):
    # two studies (realignment before and during fine-tuning) of 3 settings each, 1 setting a round
    experiment = search_experiment({"trials": 3, "parallel": 1}, schedules=["before", "during"])
    assert len(experiment.candidates) == 2
    factory = session_factory()
    outcome = run_depth_search(experiment, tmp_path, session_factory=factory, log=quiet)
    assert [len(s["evaluated"]) for s in outcome["studies"]] == [3, 3]
    # the baselines, then 3 rounds of 2 studies x 1 setting x 2 seeds: not 6 rounds one study after the other
    assert [len(batch) for batch in factory.batches] == [2, 4, 4, 4]
    schedules = {trial_id.split("_")[4] for trial_id in factory.batches[1]}
    assert schedules == {"before", "during"}
