"""One Optuna study of the depth search: which setting next, and what to tell Optuna when it is done.

A study belongs to one (model, task, aligner, schedule) and lives in its
own Optuna storage. ``StudyRun`` asks the study for settings one at a
time (``ask``, when the search has a free slot), keeps the settings in
flight, and tells the study each setting's value once every seed of it
has ended (``trial_ended``): the mean over seeds of the objective, read
from the result files the driver wrote. Pure Python and Optuna: no Ray.

Two suggestions that freeze the same tensors are one setting: a
suggestion of a setting already told is told its value at once, one of a
setting in flight is told with it. A setting whose trials fail is told
FAIL and not run again in this run; the next run retries it once (under
every sampler: the retry is enqueued as a fresh trial, see ``start``).
Settings asked but never told (an interrupted run) resume first.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from orchestrator.experiment import Experiment, StudyKey
from orchestrator.search_values import objective_metric, seed_results, seed_values, trial_attributes
from trainables.errors import SpecError
from trainables.trial_spec import BASELINE, TrialSpec


def study_name(experiment_name: str, key: StudyKey) -> str:
    return ":".join((experiment_name, *key))


def make_sampler(settings: Any):
    import optuna

    # "grid" enqueues every setting once (see StudyRun); Optuna's GridSampler would
    # also list (depth 0, front) and (depth 0, back), and calls study.stop() in ask/tell use
    if settings.sampler in ("random", "grid"):
        return optuna.samplers.RandomSampler(seed=settings.seed)
    # fewer random start-up points than Optuna's 10 on the small budgets depth searches have
    startup = max(1, min(10, settings.trials // 2))
    # settings in flight at once: the constant liar keeps TPE from suggesting the same region twice
    return optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=startup,
                                      constant_liar=settings.parallel != 1)


@dataclass
class Setting:
    """A setting in flight: its Optuna trials (told together), its seeds' trials, those ended."""

    strategy: str
    trials: list[Any]                      # optuna.trial.Trial, one per suggestion of this setting
    specs: list[TrialSpec]
    ended: set[str] = field(default_factory=set)
    failed: bool = False

    @property
    def done(self) -> bool:
        return len(self.ended) == len(self.specs)


class StudyRun:
    """One study's side of the search: ``start``, then ``ask`` / ``trial_ended`` until ``asking_done``."""

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
        self.storage = storage
        self.study = optuna.create_study(
            study_name=self.name, storage=storage, direction="maximize", load_if_exists=True,
            sampler=make_sampler(self.settings))
        fingerprint = {**self.settings.fingerprint(), "strategies": sorted(self.by_strategy)}
        stored = self.study.user_attrs.get("fingerprint")
        if stored is None:
            self.study.set_user_attr("fingerprint", fingerprint)
            if self.settings.sampler == "grid":
                for strategy in self.by_strategy:   # shallowest first
                    self.study.enqueue_trial(self.space.params_of(strategy, self.num_blocks))
        elif stored != fingerprint:
            raise SpecError(f"the Optuna study {self.name!r} in {storage} was made with other search "
                            f"settings: use another storage or --output")
        self.errored: list[str] = []
        self.in_flight: dict[str, Setting] = {}
        self.asking_done = False

    # ------------------------------------------------------------ bookkeeping

    def _strategy(self, trial) -> str | None:
        params = trial.params
        if "depth" not in params or "side" not in params:
            return None
        return self.space.strategy_of_params(params, self.num_blocks)

    def told(self) -> tuple[dict[str, float], set[str]]:
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

    def _tell(self, setting: Setting) -> float | None:
        """Tell every Optuna trial of ``setting`` its seed mean (FAIL when a seed has no value)."""
        from optuna.trial import TrialState

        values = None if setting.failed else seed_values(self.output, setting.specs, self.settings.objective,
                                                         self.metric)
        if values is None:
            for trial in setting.trials:
                self.study.tell(trial, state=TrialState.FAIL)
            return None
        attributes = trial_attributes(seed_results(self.output, setting.specs) or [])
        mean = statistics.fmean(values)
        for trial in setting.trials:
            for name, value in attributes.items():
                trial.set_user_attr(name, value)
            self.study.tell(trial, mean)
        return mean

    # ------------------------------------------------------------------- loop

    def start(self) -> list[Setting]:
        """Pick up what an earlier run left; return the settings asked but never told (resumed first)."""
        import optuna
        from optuna.trial import TrialState

        self.budget = min(self.settings.trials, len(self.by_strategy))
        self.patience = max(20, 2 * len(self.by_strategy))
        self.repeats = 0
        self.failed_now: set[str] = set()
        resumed: dict[str, Setting] = {}
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            strategy = self._strategy(frozen)
            if strategy is None:
                self.study.tell(frozen.number, state=TrialState.FAIL)
                continue
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            if strategy in resumed:
                resumed[strategy].trials.append(trial)
            else:
                resumed[strategy] = Setting(strategy, [trial], self.by_strategy[strategy])
        self.in_flight.update(resumed)
        if resumed:
            self.log(f"{self.name}: resuming {len(resumed)} setting(s) of an interrupted search")
        # settings that failed in an earlier run get one more try, as `alignfreeze run` retries
        # errored trials; within one run a failure is final. Enqueued as fresh trials: Optuna's
        # skip_if_exists would find the failed trial's parameters and enqueue nothing
        _, failed_before = self.told()
        waiting = {self._strategy_of_fixed(t) for t in self.study.get_trials(deepcopy=False,
                                                                              states=(TrialState.WAITING,))}
        retries = sorted(failed_before - set(resumed))
        for strategy in retries:
            if strategy not in waiting:
                self.study.enqueue_trial(self.space.params_of(strategy, self.num_blocks))
        if retries:
            self.log(f"{self.name}: retrying {len(retries)} setting(s) that failed before")
        return list(resumed.values())

    def _strategy_of_fixed(self, trial) -> str | None:
        params = trial.system_attrs.get("fixed_params", {})
        return self.space.strategy_of_params(params, self.num_blocks) if "depth" in params else None

    def can_ask(self) -> bool:
        parallel = self.settings.parallel
        return not self.asking_done and (parallel is None or len(self.in_flight) < parallel)

    def ask(self) -> Setting | None:
        """The next setting to run, or None when the study's budget is spent (``asking_done``)."""
        from optuna.trial import TrialState

        values, _ = self.told()
        while True:
            tried = set(values) | self.failed_now | set(self.in_flight)
            if len(tried) >= self.budget or self.repeats >= self.patience:
                if self.repeats >= self.patience:
                    self.log(f"{self.name}: the sampler suggested only evaluated settings {self.patience} "
                             f"times in a row; stopping after {len(tried)} of {self.budget}")
                self.asking_done = True
                return None
            trial = self.study.ask()
            strategy = self.space.suggest(trial, self.num_blocks)
            trial.set_user_attr("strategy", strategy)
            if strategy not in tried:
                self.repeats = 0
                setting = Setting(strategy, [trial], self.by_strategy[strategy])
                self.in_flight[strategy] = setting
                self.log(f"{self.name}: evaluating {strategy} ({len(setting.specs)} trial(s); "
                         f"{len(tried)} of {self.budget} settings done or running)")
                return setting
            # a setting known (or running) already: told without running a trial
            self.repeats += 1
            if strategy in values:
                trial.set_user_attr("shares_trials_with", strategy)
                self.study.tell(trial, values[strategy])
            elif strategy in self.failed_now:
                self.study.tell(trial, state=TrialState.FAIL)
            else:
                self.in_flight[strategy].trials.append(trial)

    def trial_ended(self, setting: Setting, trial_id: str, failed: bool) -> None:
        """One seed of ``setting`` ended (a result file, or an error file, is written)."""
        setting.ended.add(trial_id)
        if failed:
            setting.failed = True
            self.errored.append(trial_id)
        if setting.done:
            del self.in_flight[setting.strategy]
            if self._tell(setting) is None:
                self.failed_now.add(setting.strategy)
