"""Searching the freezing depth: Optuna suggests, Ray Tune runs the trials, with no round barrier.

One Optuna study per (model, task, aligner, schedule), kept in its own
storage (SQLite in the results directory by default), not in Ray's
state: a resumed search reads every finished evaluation back from the
study (Ray's OptunaSearch ignores the results of restored trials).

The whole search is one Tune experiment fed by ``SearchFeed``: each time
Tune has room for a trial it asks the feed, which hands out the
baselines, then the seeds of the settings in flight, then asks a study
for a new setting (``orchestrator.search_study``). A slot freed by one
seed is filled at once by the next trial, whatever the other seeds and
studies are doing. A study is told a setting's value once all its seeds
have ended; ``search.parallel`` caps the settings in flight per study.
The value is the validation score of ``search.objective``, mean over
seeds; test is reported beside it, never chosen on
(``orchestrator.search_values``). After an interruption the same command
resumes: settings asked but never told run first, their trials resuming
from Ray's checkpoints, finished trials are read from ``results/``.
"""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path
from typing import Any, Callable

from orchestrator import results as results_dir
from orchestrator.experiment import Experiment
from orchestrator.runner import TrialSession, prepare_output
from analysis.search_tables import format_study
from orchestrator.search_settings import check_objective
from orchestrator.search_study import Setting, StudyRun, study_name
from orchestrator.search_summary import SEARCH_DIR, study_summary
from trainables.artifacts import content_key
from trainables.errors import SpecError
from trainables.trial_spec import TrialSpec

__all__ = ["OPTUNA_DB", "SEARCH_DIR", "SearchFeed", "default_storage", "dashboard_command", "format_study",
           "run_depth_search", "search_fingerprint", "study_name"]

OPTUNA_DB = "optuna.db"


def default_storage(output: Path) -> str:
    return f"sqlite:///{(output / OPTUNA_DB).resolve()}"


def dashboard_command(storage: str) -> str:
    return f"optuna-dashboard {storage}"


def search_fingerprint(experiment: Experiment) -> dict[str, Any]:
    """Settings and candidate trials: a resumed search must find both unchanged."""
    assert experiment.search is not None
    candidates = sorted(t.trial_id for t in experiment.all_trials)
    return {**experiment.search.fingerprint(), "trials_key": content_key(candidates)}


class SearchFeed:
    """The trials of a search, one at a time, as slots free: ``next_trial`` / ``trial_ended``.

    ``next_trial`` returns a spec to run, or None: nothing now (settings in
    flight must end first) or, once ``finished``, nothing ever again.
    Trials with a result already are never handed out: they count as ended.
    """

    def __init__(self, output: Path, baselines: list[TrialSpec], studies: list[StudyRun],
                 completed: set[str], log: Callable[[str], None]):
        self.output = output
        self.studies = studies
        self.completed = set(completed)
        self.log = log
        self.queue: deque[tuple[StudyRun | None, Setting | None, TrialSpec]] = deque(
            (None, None, spec) for spec in baselines if spec.trial_id not in self.completed)
        self.handed: dict[str, tuple[StudyRun | None, Setting | None]] = {}
        self.errored: list[str] = []
        self.finished = False
        if self.queue:
            log(f"running {len(self.queue)} baseline trial(s)")
        for study in studies:
            for setting in study.start():
                self._enqueue(study, setting)

    def _enqueue(self, study: StudyRun, setting: Setting) -> None:
        results_dir.extend_manifest(self.output, setting.specs)
        for spec in setting.specs:
            if spec.trial_id in self.completed:
                study.trial_ended(setting, spec.trial_id, failed=False)
            else:
                self.queue.append((study, setting, spec))
        if setting.done:
            study_summary(study)

    def _in_flight(self, study: StudyRun) -> int:
        return sum(len(s.specs) - len(s.ended) for s in study.in_flight.values())

    def next_trial(self) -> TrialSpec | None:
        while not self.queue:
            askable = [study for study in self.studies if study.can_ask()]
            if not askable:
                self.finished = all(study.asking_done for study in self.studies)
                return None
            # the study with the fewest trials running asks: studies share the cluster
            study = min(askable, key=self._in_flight)
            setting = study.ask()
            if setting is not None:
                self._enqueue(study, setting)
        study, setting, spec = self.queue.popleft()
        self.handed[spec.trial_id] = (study, setting)
        return spec

    def trial_ended(self, trial_id: str, failed: bool) -> None:
        """Called by the session once the trial's result (or error) file is written."""
        study, setting = self.handed.pop(trial_id, (None, None))
        self.completed.add(trial_id)
        if failed:
            self.errored.append(trial_id)
        if study is not None and setting is not None:
            study.trial_ended(setting, trial_id, failed)
            if setting.done:
                study_summary(study)     # after every setting, for `alignfreeze status` and for readers

    @property
    def interrupted(self) -> bool:
        """Trials handed out that never ended, or settings left in flight: the run was stopped."""
        return bool(self.handed) or any(study.in_flight for study in self.studies)


def run_depth_search(experiment: Experiment, output: Path, address: str | None = None, verbose: int = 1,
                     session_factory: Callable[..., Any] = TrialSession,
                     log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the baselines and every study's settings in one Tune experiment; return summaries and errors."""
    import optuna

    if experiment.search is None:
        raise SpecError(f"experiment {experiment.name} has no 'search' section: use alignfreeze run")
    check_objective(experiment.search, [spec for key in experiment.candidates
                                        for specs in experiment.candidates[key].values() for spec in specs])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    log = log or (lambda line: print(f"[alignfreeze] {line}", file=sys.stderr, flush=True))
    output = output.resolve()
    prepare_output(output, search=True)        # a damaged or foreign results directory: one line
    storage = experiment.search.storage or default_storage(output)
    with session_factory(output, experiment.ray, experiment.resources, address, verbose,
                         checkpoint=experiment.checkpoint, loggers=experiment.loggers.to_dict()) as session:
        # written under the session's driver lock: a second driver is refused before it changes anything
        results_dir.write_manifest(output, experiment.name, experiment.trials, experiment.source,
                                   search=search_fingerprint(experiment))
        # open every study first: a study made with other settings is refused before any trial
        runs = [StudyRun(experiment, key, output, storage, log) for key in experiment.candidates]
        log(f"watch the search: {dashboard_command(storage)}")
        feed = SearchFeed(output, experiment.trials, runs, results_dir.completed_ids(output), log)
        session.run_search(feed)
        interrupted = feed.interrupted
        if interrupted:
            log("interrupted; run the same command again to resume")
        studies = [study_summary(study) for study in runs]
        errored = feed.errored
    return {"studies": studies, "errored": sorted(set(errored)), "storage": storage, "output": str(output),
            "interrupted": interrupted, "dashboard": dashboard_command(storage)}
