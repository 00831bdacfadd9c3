"""Searching the freezing depth: Optuna suggests, Ray Tune runs the trials.

One Optuna study per (model, task, aligner, schedule), kept in its own
storage (SQLite in the results directory by default), not in Ray's
state: a resumed search reads every finished evaluation back from the
study (Ray's OptunaSearch ignores the results of restored trials).

Each round asks every unfinished study for up to ``parallel`` settings,
runs every seed of each setting as one batch of Tune trials (one Ray
session for the whole search), and tells each study the mean over seeds
of the metric's average over the target languages. A setting already evaluated (Optuna may suggest it again; two
points may freeze the same tensors) is told from its results at once and
costs no trial; a setting whose trials fail is told FAIL and not run
again. After an interruption the same command resumes: settings asked
but never told are evaluated first, their trials resuming from Ray's
checkpoints, finished trials are read from ``results/``.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

from orchestrator import results as results_dir
from orchestrator.experiment import Experiment, StudyKey
from orchestrator.runner import TrialSession
from orchestrator.search_settings import SearchSettings
from trainables.artifacts import atomic_write_json, content_key
from trainables.errors import SpecError
from trainables.tasks.registry import get_task
from trainables.trial_spec import BASELINE, TrialSpec

SEARCH_DIR = "search"
OPTUNA_DB = "optuna.db"


def default_storage(output: Path) -> str:
    return f"sqlite:///{(output / OPTUNA_DB).resolve()}"


def study_name(experiment_name: str, key: StudyKey) -> str:
    return ":".join((experiment_name, *key))


def objective_metric(settings: SearchSettings, task: str) -> str:
    return settings.metric or get_task(task).primary_metric


def seed_values(output: Path, specs: list[TrialSpec], metric: str) -> list[float] | None:
    """The metric's target average of each seed's result, or None while one is missing."""
    paths = [output / results_dir.RESULTS / f"{spec.trial_id}.json" for spec in specs]
    if not all(path.is_file() for path in paths):
        return None
    return [float(json.loads(path.read_text(encoding="utf-8"))["average"][metric]) for path in paths]


def search_fingerprint(experiment: Experiment) -> dict[str, Any]:
    """Settings and candidate trials: a resumed search must find both unchanged."""
    assert experiment.search is not None
    candidates = sorted(t.trial_id for t in experiment.all_trials)
    return {**experiment.search.fingerprint(), "trials_key": content_key(candidates)}


def _sampler(settings: SearchSettings):
    import optuna

    # "grid" enqueues every setting once (see StudyRun); Optuna's GridSampler would
    # also list (depth 0, front) and (depth 0, back), and calls study.stop() in ask/tell use
    if settings.sampler in ("random", "grid"):
        return optuna.samplers.RandomSampler(seed=settings.seed)
    # fewer random start-up points than Optuna's 10 on the small budgets depth searches have
    startup = max(1, min(10, settings.trials // 2))
    return optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=startup)


class StudyRun:
    """One study's side of the rounds: ``start``, then ``ask_round`` / ``tell_round`` until finished."""

    def __init__(self, experiment: Experiment, key: StudyKey, output: Path, storage: str,
                 log: Callable[[str], None]):
        import optuna

        assert experiment.search is not None
        self.settings = experiment.search
        self.key = key
        self.output = output
        self.log = log
        self.by_strategy = experiment.candidates[key]
        self.baselines = [t for t in experiment.trials if (t.model, t.task) == key[:2] and t.strategy == BASELINE]
        self.num_blocks = experiment.num_blocks[key[0]]
        self.space = self.settings.space
        self.metric = objective_metric(self.settings, key[1])
        self.name = study_name(experiment.name, key)
        self.study = optuna.create_study(
            study_name=self.name, storage=storage, direction="maximize", load_if_exists=True,
            sampler=_sampler(self.settings))
        fingerprint = {**self.settings.fingerprint(), "strategies": sorted(self.by_strategy)}
        stored = self.study.user_attrs.get("fingerprint")
        if stored is None:
            self.study.set_user_attr("fingerprint", fingerprint)
            if self.settings.sampler == "grid":
                for strategy in self.by_strategy:   # shallowest first
                    self.study.enqueue_trial(self.space.params_of(strategy))
        elif stored != fingerprint:
            raise SpecError(f"the Optuna study {self.name!r} in {storage} was made with other search "
                            f"settings: use another storage or --output")
        self.errored: list[str] = []
        self.interrupted = False

    # ------------------------------------------------------------ bookkeeping

    def _strategy(self, trial) -> str | None:
        params = trial.params
        if "depth" not in params or "side" not in params:
            return None
        return self.space.strategy_of_params(params, self.num_blocks)

    def _told(self) -> tuple[dict[str, float], set[str]]:
        """Values of the settings evaluated so far, and the settings that failed."""
        from optuna.trial import TrialState

        values: dict[str, float] = {}
        failed: set[str] = set()
        for trial in self.study.get_trials(deepcopy=False):
            strategy = self._strategy(trial)
            if strategy is None:
                continue
            if trial.state == TrialState.COMPLETE:
                values[strategy] = float(trial.value)
            elif trial.state == TrialState.FAIL:
                failed.add(strategy)
        return values, failed - set(values)

    def _tell(self, number: int, strategy: str) -> float | None:
        from optuna.trial import TrialState

        values = seed_values(self.output, self.by_strategy[strategy], self.metric)
        if values is None:
            self.study.tell(number, state=TrialState.FAIL)
            return None
        mean = statistics.fmean(values)
        self.study.tell(number, mean)
        return mean

    # ------------------------------------------------------------------- loop

    def start(self) -> None:
        """Pick up what an earlier run left: settings asked but never told, settings that failed."""
        from optuna.trial import TrialState

        self.budget = min(self.settings.trials, len(self.by_strategy))
        self.patience = max(20, 2 * len(self.by_strategy))
        self.pending: list[tuple[int, str]] = []
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            strategy = self._strategy(trial)
            if strategy is None:
                self.study.tell(trial.number, state=TrialState.FAIL)
            else:
                self.pending.append((trial.number, strategy))
        if self.pending:
            self.log(f"{self.name}: resuming {len(self.pending)} setting(s) of an interrupted search")
        # settings that failed in an earlier run get one more try, as `alignfreeze run` retries
        # errored trials; within one run a failure is final
        _, failed_before = self._told()
        for strategy in sorted(failed_before - {s for _, s in self.pending}):
            self.study.enqueue_trial(self.space.params_of(strategy), skip_if_exists=True)
        if failed_before:
            self.log(f"{self.name}: retrying {len(failed_before)} setting(s) that failed before")
        self.failed_now: set[str] = set()
        self.repeats = 0
        self.finished = False

    def ask_round(self) -> list[tuple[int, str]]:
        """Up to ``parallel`` (Optuna trial number, setting) pairs to run now; [] when the study is done."""
        from optuna.trial import TrialState

        values, _ = self._told()
        tried = set(values) | self.failed_now
        batch, self.pending = list(self.pending), []
        while len(batch) < self.settings.parallel and len(tried | {s for _, s in batch}) < self.budget:
            trial = self.study.ask()
            strategy = self.space.suggest(trial, self.num_blocks)
            trial.set_user_attr("strategy", strategy)
            if strategy in tried or strategy in {s for _, s in batch}:
                # a setting known (or about to be) already: told without running a trial
                if strategy in values:
                    self._tell(trial.number, strategy)
                elif strategy in self.failed_now:
                    self.study.tell(trial.number, state=TrialState.FAIL)
                else:
                    batch.append((trial.number, strategy))
                self.repeats += 1
                if self.repeats >= self.patience:
                    break
                continue
            self.repeats = 0
            batch.append((trial.number, strategy))
        if not batch:
            self.finished = True
            if self.repeats >= self.patience:
                self.log(f"{self.name}: the sampler suggested only evaluated settings {self.patience} times "
                         f"in a row; stopping after {len(tried)} of {self.budget}")
            return []
        strategies = list(dict.fromkeys(strategy for _, strategy in batch))
        self.log(f"{self.name}: evaluating {', '.join(strategies)} "
                 f"({len(strategies) * len(self.by_strategy[strategies[0]])} trials; "
                 f"{len(tried)} of {self.budget} settings done)")
        return batch

    def specs_of(self, batch: list[tuple[int, str]]) -> list[TrialSpec]:
        strategies = dict.fromkeys(strategy for _, strategy in batch)
        return [spec for strategy in strategies for spec in self.by_strategy[strategy]]

    def tell_round(self, batch: list[tuple[int, str]], outcome: dict[str, Any]) -> None:
        """Tell Optuna how the round's settings did, from their result files."""
        errored = set(outcome.get("errored", []))
        # no result and no error: the run was stopped (Ctrl-C, lost driver); leave those
        # settings asked but untold, so that the next run resumes them
        stopped = set(outcome.get("missing", [])) - errored
        ids = {spec.trial_id for spec in self.specs_of(batch)}
        self.errored += sorted(errored & ids)
        for number, strategy in batch:
            if {spec.trial_id for spec in self.by_strategy[strategy]} & stopped:
                self.interrupted = True
            elif self._tell(number, strategy) is None:
                self.failed_now.add(strategy)
        self.summary()       # after every round, for `alignfreeze status` and for readers
        if self.interrupted:
            self.log(f"{self.name}: interrupted; run the same command again to resume")

    def summary(self) -> dict[str, Any]:
        """Every evaluated setting, best first, with the baseline for comparison; written to DIR/search/."""
        values, failed = self._told()
        evaluated = []
        for strategy in values:
            seeds = seed_values(self.output, self.by_strategy[strategy], self.metric) or []
            point = self.space.params_of(strategy)
            evaluated.append({"strategy": strategy, "side": point["side"] if point["depth"] else None,
                              "depth": point["depth"],
                              "mean": statistics.fmean(seeds) if seeds else values[strategy],
                              "std": statistics.pstdev(seeds) if seeds else 0.0, "seed_values": seeds})
        evaluated.sort(key=lambda row: (-row["mean"], row["depth"], row["strategy"]))
        model, task, aligner, schedule = self.key
        baseline_values = seed_values(self.output, self.baselines, self.metric) if self.baselines else None
        summary = {
            "study": self.name, "model": model, "task": task, "aligner": aligner, "schedule": schedule,
            "metric": self.metric, "objective": f"{self.metric}, average over target languages, mean over seeds",
            "num_blocks": self.num_blocks, "space": sorted(self.by_strategy), "budget": self.settings.trials,
            "evaluated": evaluated, "failed": sorted(failed),
            "best": evaluated[0] if evaluated else None,
            "baseline": ({"mean": statistics.fmean(baseline_values), "std": statistics.pstdev(baseline_values),
                          "seed_values": baseline_values} if baseline_values else None),
            "optuna_trials": len(self.study.trials)}
        atomic_write_json(self.output / SEARCH_DIR / f"{_file_name(self.key)}.json", summary)
        return summary


def _file_name(key: StudyKey) -> str:
    model = key[0].rstrip("/").split("/")[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "_".join((model, *key[1:])))


def run_depth_search(experiment: Experiment, output: Path, address: str | None = None, verbose: int = 1,
                     session_factory: Callable[..., Any] = TrialSession,
                     log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the baselines, then rounds over every study; return the studies' summaries and errors."""
    import optuna

    if experiment.search is None:
        raise SpecError(f"experiment {experiment.name} has no 'search' section: use alignfreeze run")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    log = log or (lambda line: print(f"[alignfreeze] {line}", file=sys.stderr, flush=True))
    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    storage = experiment.search.storage or default_storage(output)
    studies: list[dict[str, Any]] = []
    errored: list[str] = []
    with session_factory(output, experiment.ray, experiment.resources, address, verbose,
                         checkpoint=experiment.checkpoint) as session:
        # written under the session's driver lock: a second driver is refused before it changes anything
        results_dir.write_manifest(output, experiment.name, experiment.trials, experiment.source,
                                   search=search_fingerprint(experiment))
        # open every study first: a study made with other settings is refused before any trial
        runs = [StudyRun(experiment, key, output, storage, log) for key in experiment.candidates]
        if experiment.trials:
            pending = len({t.trial_id for t in experiment.trials} - results_dir.completed_ids(output))
            if pending:
                log(f"running {pending} baseline trial(s)")
            outcome = session.run(experiment.trials)
            errored += outcome.get("errored", [])
            if set(outcome.get("missing", [])) - set(outcome.get("errored", [])):
                log("interrupted while running the baselines; run the same command again to resume")
                return {"studies": [], "errored": sorted(set(errored)), "storage": storage,
                        "output": str(output), "interrupted": True}
        # every unfinished study contributes its settings to each round: one Tune batch, a full cluster
        for study in runs:
            study.start()
        interrupted = False
        while not interrupted:
            rounds = [(study, study.ask_round()) for study in runs if not study.finished]
            rounds = [(study, batch) for study, batch in rounds if batch]
            if not rounds:
                break
            specs = list({spec.trial_id: spec for study, batch in rounds
                          for spec in study.specs_of(batch)}.values())
            results_dir.extend_manifest(output, specs)
            outcome = session.run(specs)
            for study, batch in rounds:
                study.tell_round(batch, outcome)
            interrupted = any(study.interrupted for study, _ in rounds)
        studies = [study.summary() for study in runs]
        errored += [trial_id for study in runs for trial_id in study.errored]
    return {"studies": studies, "errored": sorted(set(errored)), "storage": storage, "output": str(output),
            "interrupted": interrupted}


def format_study(summary: dict[str, Any]) -> str:
    """A terminal table of one study: settings best first, the baseline last."""
    lines = [f"{summary['study']}: {summary['metric']} x100 (target average, mean +- std over seeds); "
             f"{len(summary['evaluated'])} of {len(summary['space'])} settings evaluated"]
    lines.append(f"{'rank':>4}  {'strategy':<10} {'frozen blocks':<14} {'mean':>6} {'std':>5}  seeds")
    for rank, row in enumerate(summary["evaluated"], 1):
        frozen = "none" if row["depth"] == 0 else f"{row['side']} {row['depth']}/{summary['num_blocks']}"
        lines.append(f"{rank:>4}  {row['strategy']:<10} {frozen:<14} {100 * row['mean']:>6.1f} "
                     f"{100 * row['std']:>5.1f}  {len(row['seed_values'])}")
    if summary["baseline"]:
        base = summary["baseline"]
        lines.append(f"{'':>4}  {'baseline':<10} {'(no realign)':<14} {100 * base['mean']:>6.1f} "
                     f"{100 * base['std']:>5.1f}  {len(base['seed_values'])}")
    for strategy in summary["failed"]:
        lines.append(f"{'':>4}  {strategy:<10} failed (see errors/)")
    return "\n".join(lines)
