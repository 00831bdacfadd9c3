"""The Optuna depth search: its space, its settings, and the ask / run / tell loop.

The loop is driven here with a fake trial session: a simulated cluster of
slots that asks the search for a trial whenever a slot is free, as Tune
asks a Searcher, and writes result files with known validation and test
values (no Ray, no training), so every told value, every trial run, every
start time and every resumption can be checked exactly. The same loop on
Ray is tested (slow) at the end.
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
from orchestrator.depth_search import default_storage, format_study, run_depth_search, study_name
from orchestrator.experiment import experiment_from_dict
from search_spaces.freezing_depth import FreezingDepthSpace
from trainables.errors import SpecError
from trial_fixtures import small_pos_experiment

ALL_SEVEN = ["full", "front:1", "back:1", "front:2", "back:2", "front:3", "back:3"]


def depth_of(strategy: str) -> int:
    if strategy == "full":
        return 0
    if strategy.startswith("range:"):
        start, end = strategy.split(":")[1].split("-")
        return int(end) - int(start)
    return int(strategy.split(":")[1])


def known_value(strategy: str, seed: int) -> float:
    """The fake validation average: deeper is better, back beats front, seeds differ a little."""
    if strategy == "baseline":
        return 0.30 + 0.001 * seed
    depth = depth_of(strategy)
    return 0.40 + 0.02 * depth + (0.01 if strategy.startswith("back") else 0.0) + 0.001 * seed


def known_test_value(strategy: str, seed: int) -> float:
    """The fake test average: disagrees with validation (shallower is better), so a search that chose on
    test would pick another setting."""
    if strategy == "baseline":
        return 0.20 + 0.001 * seed
    depth = depth_of(strategy)
    return 0.60 - 0.03 * depth + 0.001 * seed


def fake_result(spec) -> dict:
    value, test = known_value(spec.strategy, spec.seed), known_test_value(spec.strategy, spec.seed)
    return {"trial_id": spec.trial_id, "spec": spec.to_dict(),
            "metrics": {"fr": {"accuracy": test + 0.01}, "ru": {"accuracy": test - 0.01}},
            "average": {"accuracy": test}, "english": {"accuracy": 0.9},
            "validation": {"fr": {"accuracy": value + 0.02}, "ru": {"accuracy": value - 0.02}},
            "validation_average": {"accuracy": value}, "english_validation": {"accuracy": 0.8 + 0.001 * spec.seed},
            "validation_languages": ["fr", "ru"]}


class FakeSession:
    """Stands in for ``TrialSession``: a simulated cluster of ``slots`` that 'runs' a trial by writing its
    result file after ``duration(spec)`` simulated seconds, asking the feed for the next trial whenever a
    slot is free, as Tune asks a ``Searcher``."""

    def __init__(self, output, ray_options, resources, address=None, verbose=0, *, checkpoint=None, loggers=None,
                 runs=None, starts=None, fail=(), stop=(), interrupt_after=None, slots=2, duration=None):
        self.output = Path(output)
        self.runs = runs if runs is not None else []
        self.starts = starts if starts is not None else []
        self.fail = set(fail)
        self.stop = set(stop)
        self.interrupt_after = interrupt_after
        self.slots = slots
        self.duration = duration or (lambda spec: 1.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def run_search(self, feed):
        clock, running = 0.0, []
        while True:
            while len(running) < self.slots:
                spec = feed.next_trial()
                if spec is None:
                    break
                assert spec.trial_id not in results_dir.completed_ids(self.output)
                self.starts.append((clock, spec.trial_id))
                running.append((clock + self.duration(spec), len(self.starts), spec))
            if not running:
                assert feed.finished, "the feed handed out nothing with nothing running"
                return {}
            running.sort(key=lambda item: item[:2])
            clock, _, spec = running.pop(0)
            if self.interrupt_after is not None and len(self.runs) >= self.interrupt_after:
                raise KeyboardInterrupt
            if spec.strategy in self.stop:     # as Tune after Ctrl-C: every trial ends without a result
                return {}
            self.runs.append(spec.trial_id)
            if spec.strategy in self.fail:
                results_dir.write_error(self.output, spec.trial_id, spec.to_dict(), "boom")
                feed.trial_ended(spec.trial_id, True)
                continue
            results_dir.write_result(self.output, fake_result(spec))
            feed.trial_ended(spec.trial_id, False)


def session_factory(**options):
    runs: list[str] = []
    starts: list[tuple[float, str]] = []

    def factory(*args, **kwargs):
        return FakeSession(*args, **kwargs, runs=runs, starts=starts, **options)

    factory.runs = runs
    factory.starts = starts
    return factory


def search_experiment(search=None, seeds=(3, 4), validation=True, **overrides):
    raw = small_pos_experiment(seeds=list(seeds), **overrides)
    raw.pop("strategies")
    if validation:      # the fake session writes the scores: any files will do
        raw["data"]["pos"]["validation"] = dict(raw["data"]["pos"]["eval"])
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
        assert space.strategy_of_params(space.params_of(strategy, 4), 4) == strategy


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
    ({"search": {"sampler": "cmaes"}}, "search.sampler must be one of tpe, random, grid, got 'cmaes'"),
    ({"search": {"trials": 0}}, "search.trials must be an integer from 1 to 100000, got 0"),
    ({"search": {"parallel": 1.5}}, "search.parallel must be an integer from 1 to 100000, or null"),
    ({"search": {"objective": "test"}}, "search.objective must be one of target-dev, english-dev, got 'test'"),
    ({"search": {"sides": ["front", "middle"]}}, "unknown side in search.sides 'middle'"),
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

def test_grid_search_evaluates_every_setting_once_and_tells_the_validation_seed_mean(tmp_path):
    experiment = search_experiment()
    factory = session_factory()
    outcome = run_depth_search(experiment, tmp_path, session_factory=factory, log=quiet)
    [summary] = outcome["studies"]
    assert outcome["errored"] == [] and not outcome["interrupted"]
    # every trial ran exactly once: 2 baselines + 7 settings x 2 seeds
    assert len(factory.runs) == len(set(factory.runs)) == 2 + 7 * 2
    study = study_of(tmp_path, experiment)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    for trial in complete:
        strategy = trial.user_attrs["strategy"]
        # validation, never test
        assert trial.value == statistics.fmean([known_value(strategy, 3), known_value(strategy, 4)])
    assert sorted(row["strategy"] for row in summary["evaluated"]) == sorted(ALL_SEVEN)
    assert summary["best"]["strategy"] == "back:3" and summary["best"]["chosen"]
    assert [row["strategy"] for row in summary["evaluated"] if row["chosen"]] == ["back:3"]
    assert summary["best"]["validation"]["mean"] == pytest.approx(0.40 + 0.06 + 0.01 + 0.0035)
    assert summary["best"]["validation"]["std"] == pytest.approx(0.0005)
    assert summary["best"]["test"]["mean"] == pytest.approx(0.60 - 0.09 + 0.0035)
    assert summary["baseline"]["validation"]["mean"] == pytest.approx(0.3035)
    assert summary["baseline"]["test"]["mean"] == pytest.approx(0.2035)
    means = [row["validation"]["mean"] for row in summary["evaluated"]]
    assert means == sorted(means, reverse=True)
    written = json.loads((tmp_path / "search" / "tiny-mbert_pos_dico_before.json").read_text())
    assert written["best"]["strategy"] == "back:3" and written["objective"] == "target-dev"
    # the manifest lists what was planned: the baselines and every evaluated trial, nothing else
    planned = {t["trial_id"] for t in results_dir.read_manifest(tmp_path)["trials"]}
    assert planned == set(factory.runs)


def test_the_objective_is_validation_and_test_only_reported(tmp_path):
    # on test, full realignment is best (0.60); on validation back:3 is: the search chooses back:3
    experiment = search_experiment()
    outcome = run_depth_search(experiment, tmp_path, session_factory=session_factory(), log=quiet)
    [summary] = outcome["studies"]
    best_on_test = max(summary["evaluated"], key=lambda row: row["test"]["mean"])
    assert best_on_test["strategy"] == "full" and not best_on_test["chosen"]
    assert summary["best"]["strategy"] == "back:3"
    table = format_study(summary)
    [chosen] = [line for line in table.splitlines() if "*" in line.split()[0]]
    assert chosen.split()[1:7] == ["back:3", "back", "3/4", "47.4", "0.1", "51.4"]
    assert "val" in table and "test" in table


def test_the_search_says_how_to_watch_it_in_optuna_dashboard(tmp_path):
    lines: list[str] = []
    outcome = run_depth_search(search_experiment({"trials": 1}), tmp_path, session_factory=session_factory(),
                               log=lines.append)
    command = f"optuna-dashboard sqlite:///{tmp_path.resolve() / 'optuna.db'}"
    assert outcome["dashboard"] == command and any(command in line for line in lines)


def test_english_dev_tells_the_english_validation_score(tmp_path):
    experiment = search_experiment({"objective": "english-dev", "trials": 2})
    run_depth_search(experiment, tmp_path, session_factory=session_factory(), log=quiet)
    study = study_of(tmp_path, experiment)
    values = [t.value for t in study.trials if t.state == TrialState.COMPLETE]
    assert values == pytest.approx([0.8035, 0.8035])


@pytest.mark.parametrize("objective, validation, message", [
    ("target-dev", None, "search.objective target-dev: task pos has no validation data for any target "
                         "language (data.pos.validation)"),
    ("target-dev", {"en": "EVAL"}, "task pos has no validation data for any target language"),
    ("english-dev", {"fr": "EVAL"}, "search.objective english-dev: task pos has no validation data for en "
                                    "(data.pos.validation.en)"),
])
def test_a_search_without_the_validation_data_it_needs_is_refused_before_any_trial(
        tmp_path, objective, validation, message):
    raw = small_pos_experiment()
    raw.pop("strategies")
    raw["search"] = {"objective": objective, "trials": 1}
    if validation is not None:
        raw["data"]["pos"]["validation"] = {k: raw["data"]["pos"]["eval"][k] for k in validation}
    factory = session_factory()
    with pytest.raises(SpecError) as error:
        run_depth_search(experiment_from_dict(raw), tmp_path / "out", session_factory=factory, log=quiet)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert factory.runs == [] and not (tmp_path / "out").exists()
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["search", str(path), "--output", str(tmp_path / "cli")]) == 2


def test_each_optuna_trial_carries_the_languages_validation_and_test_scores(tmp_path):
    experiment = search_experiment({"trials": 1})
    run_depth_search(experiment, tmp_path, session_factory=session_factory(), log=quiet)
    [trial] = [t for t in study_of(tmp_path, experiment).trials if t.state == TrialState.COMPLETE]
    assert trial.user_attrs["strategy"] == "full"
    attributes = trial.user_attrs
    assert attributes["seeds"] == [3, 4]
    assert attributes["val_fr_accuracy"] == pytest.approx(0.4235)
    assert attributes["seed_values"]["val_fr_accuracy"] == pytest.approx([0.423, 0.424])
    assert attributes["seed_values"]["test_avg_accuracy"] == pytest.approx([0.603, 0.604])
    assert attributes["test_ru_accuracy"] == pytest.approx(0.5935)
    assert attributes["val_avg_accuracy"] == pytest.approx(trial.value)
    assert attributes["test_avg_accuracy"] == pytest.approx(0.6035)
    assert attributes["val_en_accuracy"] == pytest.approx(0.8035)
    assert attributes["test_en_accuracy"] == pytest.approx(0.9)


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


@pytest.mark.parametrize("sampler", ["grid", "tpe", "random"])
def test_a_failed_setting_is_final_within_a_run_and_retried_once_on_the_next(tmp_path, sampler):
    experiment = search_experiment({"sampler": sampler, "trials": 7})
    factory = session_factory(fail={"back:1"})
    outcome = run_depth_search(experiment, tmp_path, session_factory=factory, log=quiet)
    [summary] = outcome["studies"]
    assert summary["failed"] == ["back:1"]
    assert "back:1" not in {row["strategy"] for row in summary["evaluated"]}
    failing = [t.trial_id for t in experiment.candidates[next(iter(experiment.candidates))]["back:1"]]
    assert sorted(outcome["errored"]) == sorted(failing)
    assert sum(run in failing for run in factory.runs) == 2      # once per seed, never retried in this run
    study = study_of(tmp_path, experiment)
    assert sum(t.state == TrialState.FAIL for t in study.trials) >= 1
    # the next run retries it once (as `alignfreeze run` retries errored trials), whatever the sampler
    retry = session_factory()
    lines: list[str] = []
    outcome = run_depth_search(experiment, tmp_path, session_factory=retry, log=lines.append)
    assert any("retrying 1 setting(s)" in line for line in lines)
    assert set(failing) <= set(retry.runs)
    assert outcome["errored"] == [] and outcome["studies"][0]["failed"] == []
    assert "back:1" in {row["strategy"] for row in outcome["studies"][0]["evaluated"]}
    if sampler == "grid":
        assert sorted(retry.runs) == sorted(failing) and len(outcome["studies"][0]["evaluated"]) == 7


def test_tpe_retries_the_failed_setting_first_on_the_next_run(tmp_path):
    # TPE, budget 2: run 1 evaluates one setting and the other fails; run 2 must run the failed one
    # again (Optuna's enqueue_trial(skip_if_exists=True) found the FAIL trial and enqueued nothing)
    experiment = search_experiment({"sampler": "tpe", "trials": 2, "seed": 5})
    first = session_factory()
    run_depth_search(experiment, tmp_path / "probe", session_factory=first, log=quiet)
    settings = [row["strategy"] for row in json.loads(
        (tmp_path / "probe" / "search" / "tiny-mbert_pos_dico_before.json").read_text())["evaluated"]]
    order = [trial_id for _, trial_id in first.starts if "baseline" not in trial_id]
    failing_strategy = next(s for s in settings if s.replace(":", "") == order[-1].split("_")[2])
    failing = session_factory(fail={failing_strategy})
    outcome = run_depth_search(experiment, tmp_path / "out", session_factory=failing, log=quiet)
    assert outcome["studies"][0]["failed"] == [failing_strategy]
    retry = session_factory()
    lines: list[str] = []
    outcome = run_depth_search(experiment, tmp_path / "out", session_factory=retry, log=lines.append)
    [summary] = outcome["studies"]
    failing_ids = {t.trial_id for t in experiment.candidates[next(iter(experiment.candidates))][failing_strategy]}
    assert set(retry.runs) == failing_ids          # run again, nothing else (the budget is 2)
    assert summary["failed"] == [] and failing_strategy in {row["strategy"] for row in summary["evaluated"]}
    # a third run has nothing left to do
    third = session_factory()
    run_depth_search(experiment, tmp_path / "out", session_factory=third, log=quiet)
    assert third.runs == []


def test_a_stopped_run_leaves_its_settings_to_the_next_run(tmp_path):
    experiment = search_experiment()
    stopped = session_factory(stop={"front:1"})
    outcome = run_depth_search(experiment, tmp_path, session_factory=stopped, log=quiet)
    assert outcome["interrupted"] and outcome["errored"] == []
    study = study_of(tmp_path, experiment)
    running = [t for t in study.trials if t.state == TrialState.RUNNING]
    assert "front:1" in {t.user_attrs["strategy"] for t in running}
    assert not [t for t in study.trials if t.state == TrialState.FAIL]
    resumed = session_factory()
    lines: list[str] = []
    outcome = run_depth_search(experiment, tmp_path, session_factory=resumed, log=lines.append)
    assert any(f"resuming {len(running)} setting(s)" in line for line in lines)
    assert not outcome["interrupted"]
    assert len(outcome["studies"][0]["evaluated"]) == 7
    assert all(study_of(tmp_path, experiment).trials[t.number].state == TrialState.COMPLETE for t in running)
    assert not set(resumed.runs) & set(stopped.runs)


def test_an_interrupted_search_resumes_the_setting_it_was_running(tmp_path):
    experiment = search_experiment({"sampler": "tpe", "trials": 3, "parallel": 1})
    # the driver dies after 2 baselines + 1 setting (2 seeds) + the first seed of the second setting
    crashing = session_factory(interrupt_after=5)
    with pytest.raises(KeyboardInterrupt):
        run_depth_search(experiment, tmp_path, session_factory=crashing, log=quiet)
    study = study_of(tmp_path, experiment)
    [running] = [t for t in study.trials if t.state == TrialState.RUNNING]
    interrupted = FreezingDepthSpace(("front", "back"), 0, 3).strategy_of_params(running.params, 4)
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


# ------------------------------------------------------------ no round barrier

def test_a_free_slot_starts_the_next_setting_before_a_slow_seed_ends(tmp_path):
    # 2 slots, 2 seeds a setting; seed 4 of full realignment takes 10 s, everything else 1 s
    experiment = search_experiment({"trials": 3, "baseline": False})
    factory = session_factory(duration=lambda spec: 10.0 if (spec.strategy, spec.seed) == ("full", 4) else 1.0)
    run_depth_search(experiment, tmp_path, session_factory=factory, log=quiet)
    started = {trial_id.split("_")[2] + trial_id.split("_")[5]: time for time, trial_id in factory.starts}
    # front:1 and back:1 run in the slot that full's fast seed left, while its slow seed still runs
    assert started == {"fulls3": 0.0, "fulls4": 0.0, "front1s3": 1.0, "front1s4": 2.0,
                       "back1s3": 3.0, "back1s4": 4.0}


def test_parallel_caps_the_settings_in_flight(tmp_path):
    experiment = search_experiment({"trials": 3, "baseline": False, "parallel": 1})
    factory = session_factory(duration=lambda spec: 10.0 if (spec.strategy, spec.seed) == ("full", 4) else 1.0)
    run_depth_search(experiment, tmp_path, session_factory=factory, log=quiet)
    started = {trial_id.split("_")[2] + trial_id.split("_")[5]: time for time, trial_id in factory.starts}
    # one setting at a time: front:1 waits for full's slow seed
    assert started == {"fulls3": 0.0, "fulls4": 0.0, "front1s3": 10.0, "front1s4": 10.0,
                       "back1s3": 11.0, "back1s4": 11.0}


def test_studies_share_the_cluster(tmp_path):
    # two studies (realignment before and during fine-tuning) of 3 settings each
    experiment = search_experiment({"trials": 3}, schedules=["before", "during"])
    assert len(experiment.candidates) == 2
    factory = session_factory(slots=4)
    outcome = run_depth_search(experiment, tmp_path, session_factory=factory, log=quiet)
    assert [len(s["evaluated"]) for s in outcome["studies"]] == [3, 3]
    # the baselines, then both studies at once: 4 slots always busy, 2 + 12 trials in 4 waves
    assert sorted({time for time, _ in factory.starts}) == [0.0, 1.0, 2.0, 3.0]
    first_wave = [trial_id for time, trial_id in factory.starts if time == 1.0]
    assert {trial_id.split("_")[4] for trial_id in first_wave} == {"before", "during"}


def test_tpe_with_settings_in_flight_uses_the_constant_liar():
    from orchestrator.search_settings import SearchSettings
    from orchestrator.search_study import make_sampler

    assert make_sampler(SearchSettings(parallel=None))._constant_liar is True
    assert make_sampler(SearchSettings(parallel=3))._constant_liar is True
    assert make_sampler(SearchSettings(parallel=1))._constant_liar is False
    assert isinstance(make_sampler(SearchSettings(sampler="grid")), optuna.samplers.RandomSampler)


def test_the_search_caps_its_trials_in_flight_at_the_slots_the_cluster_has():
    from orchestrator.runner import trial_slots

    nodes = [{"CPU": 16, "GPU": 2}, {"CPU": 4}]
    # the smallest trial counts: 1 CPU -> 16 + 4 slots; GPU trials only fit where the GPUs are
    assert trial_slots(nodes, {("m", "pos"): (1, 0), ("m", "nli"): (2, 0)}) == 20
    assert trial_slots(nodes, {("m", "pos"): (2, 0.5)}) == 4
    assert trial_slots(nodes, {("m", "pos"): (8, 1)}) == 2
    assert trial_slots([{"CPU": 1}], {("m", "pos"): (4, 0)}) == 1     # never 0: Tune would run nothing


# --------------------------------------------------------------- through Ray

@pytest.mark.slow
def test_depth_search_on_ray_tells_optuna_the_trials_results(tmp_path, capsys):
    raw = small_pos_experiment()
    raw.pop("strategies")
    raw["search"] = {"trials": 2, "depths": [1, 2], "sides": ["back"], "sampler": "grid"}
    raw["data"]["pos"]["validation"] = dict(raw["data"]["pos"]["eval"])
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
        assert trial.value == results[spec.trial_id]["validation_average"]["accuracy"]
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
