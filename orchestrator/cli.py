"""The ``alignfreeze`` command.

    alignfreeze run EXPERIMENT.yaml [--output DIR] [--address ADDR]
    alignfreeze search EXPERIMENT.yaml [--output DIR] [--address ADDR] [--trials N]
    alignfreeze status DIR [--json]
    alignfreeze demo [--output DIR]
    alignfreeze analyze SOURCE... [--format ...]
    alignfreeze import-reference DIR --out FILE.csv
    alignfreeze export DIR --out FILE.csv|FILE.parquet
    alignfreeze align-eval [...]
    alignfreeze align --aligner NAME --language XX --parallel FILE [...]
    alignfreeze score TASK FILE...
    alignfreeze plan EXPERIMENT.yaml [--throughput FILE] [--steps N] [--json]
    alignfreeze cache list|prune [--older-than D]
    alignfreeze keys
    alignfreeze template slurm | kuberay EXPERIMENT STORAGE | ray-up EXPERIMENT STORAGE

A user error (bad spec, bad data file) is one line on stderr and exit
status 2, raised before any trial starts where it can be known then.
Ctrl-C during ``run`` or ``search`` is exit status 130 and one line saying
how to resume (the same command).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from trainables.errors import AlignFreezeError, SpecError

from search_spaces import preset_path


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", type=Path, help="experiment YAML file")
    _add_overrides(parser)
    parser.add_argument("--output", default=None,
                        help="results directory: a path or a storage URI such as s3://bucket/run "
                             "(default: ./runs/<experiment name>)")
    parser.add_argument("--address", default=None,
                        help="address of an existing Ray cluster (default: start one locally)")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the trials, run nothing")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2),
                        help="0: the live view only (Ray's own output off); 1: also Ray Tune's status tables "
                             "and Ray's worker lines (the view prints plain lines); 2: also every result "
                             "Tune receives")
    _add_dashboard(parser)
    parser.add_argument("--yes", action="store_true",
                        help=f"run a grid of more than {LARGE_GRID} trials (look at alignfreeze plan first)")


def _add_dashboard(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dashboard", action="store_true",
                        help="start the local Ray with its dashboard on 127.0.0.1 and print its address "
                             "(with --address the cluster's is printed either way)")


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="change the experiment file: seeds=[31] tasks=[pos] finetune.epochs=1 (values in "
                             "YAML, checked like the file)")


def _load(args: argparse.Namespace, experiment_path: Path, search: bool):
    """The validated experiment of ``run`` / ``search`` and its output directory.

    A dry run then lists the trials (stdout, one id a line) and the data plan
    (stderr: Hub datasets and dictionaries to fetch, local files read).
    """
    from orchestrator.experiment import load_experiment_file
    from trainables.storage import RemotePath, location

    # an unsupported URI scheme stops here, before anything is read or written
    requested = location(args.output) if args.output else None
    experiment = load_experiment_file(experiment_path, args.overrides)
    if getattr(args, "dashboard", False):
        experiment.ray["dashboard"] = True      # TrialSession reads it (run, search, demo)
    if search and experiment.search is None:
        raise SpecError(f"{experiment_path} has no 'search' section: run its grid with alignfreeze run")
    if not search and experiment.search is not None:
        raise SpecError(f"{experiment_path} has a 'search' section: run it with alignfreeze search")
    if search and getattr(args, "trials", None) is not None:
        import dataclasses

        if args.trials < 1:
            raise SpecError(f"--trials must be at least 1, got {args.trials}")
        experiment.search = dataclasses.replace(experiment.search, trials=args.trials)
    output = requested or Path("runs") / experiment.name
    from orchestrator.results import check_output_location

    check_output_location(output, search=search)     # writes nothing: also for --dry-run
    if search and isinstance(output, RemotePath):
        raise SpecError(f"--output {output}: alignfreeze search needs a local results directory "
                        f"(its Optuna studies are SQLite there); alignfreeze run takes storage URIs")
    if not args.dry_run:
        _confirm_size(experiment, experiment_path, getattr(args, "yes", True))
    if search:
        settings = experiment.search
        print(f"experiment {experiment.name}: depth search, {len(experiment.candidates)} study(ies), "
              f"{settings.trials} setting(s) each, {settings.sampler} sampler -> {output.resolve()}",
              file=sys.stderr)
    else:
        print(f"experiment {experiment.name}: {len(experiment.trials)} trials -> {output.resolve()}",
              file=sys.stderr)
    if not args.dry_run and not isinstance(output, RemotePath):
        print(f"training curves: tensorboard --logdir {output.resolve() / 'ray'}", file=sys.stderr)
    if args.dry_run:
        _dry_run(experiment)
    return experiment, output


LARGE_GRID = 2000      # trials: above it a run asks for --yes (the paper's grid is 240)


def _confirm_size(experiment, experiment_path: Path, yes: bool) -> None:
    """A grid far beyond the paper's (a typo in seeds or strategies multiplies it) runs only
    with --yes, after its bill has been seen."""
    if experiment.search is None:
        trials = len(experiment.trials)
    else:   # the baselines, then every study's settings, each once per seed
        seeds = max((len(specs) for by in experiment.candidates.values() for specs in by.values()), default=0)
        trials = len(experiment.trials) + len(experiment.candidates) * experiment.search.trials * seeds
    if trials > LARGE_GRID and not yes:
        raise SpecError(f"{experiment_path}: {trials} trials, more than {LARGE_GRID}: look at its cost with "
                        f"alignfreeze plan {experiment_path}, then run it again with --yes")


def _dry_run(experiment) -> None:
    from orchestrator.data_plan import data_plan, format_plan

    for trial in experiment.trials:
        print(trial.trial_id)
    for key, by_strategy in experiment.candidates.items():
        seeds = len(next(iter(by_strategy.values())))
        print(f"{':'.join(key)}: {len(by_strategy)} settings x {seeds} seed(s): {', '.join(by_strategy)}")
    print(format_plan(data_plan(experiment.all_trials)), file=sys.stderr)


INTERRUPTED = "alignfreeze: interrupted: run the same command again to resume"
INTERRUPTED_STATUS = 130          # 128 + SIGINT, what a shell reports for Ctrl-C
MAX_MESSAGE = 500                 # characters of an error line: a message never floods the terminal


class _InterruptWatch:
    """Whether Ctrl-C came while the block ran, also when a handler caught it and
    returned: Ray Tune ends its run on the first SIGINT and returns as if done.
    Python writes the number of every signal it handles to the wakeup descriptor,
    whichever handler then runs, so this needs nothing of Tune's internals."""

    def __enter__(self) -> "_InterruptWatch":
        self.interrupted = False
        self._pipe: tuple[int, int] | None = None
        if threading.current_thread() is threading.main_thread():
            read, write = os.pipe()
            os.set_blocking(read, False)
            os.set_blocking(write, False)
            self._previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
            self._pipe = (read, write)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pipe is None:
            return
        read, write = self._pipe
        signal.set_wakeup_fd(self._previous)
        try:
            while chunk := os.read(read, 512):
                self.interrupted = self.interrupted or signal.SIGINT in chunk
        except BlockingIOError:
            pass
        finally:
            os.close(read)
            os.close(write)


def _one_line(message: str) -> str:
    """The message on one line, cut to MAX_MESSAGE characters."""
    line = " ".join(message.splitlines())
    return line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE - 3] + "..."


def _report_errored(output: Path, errored: list[str]) -> None:
    for trial_id in errored:
        print(f"errored: {trial_id} (see {output}/errors/{trial_id}.json)", file=sys.stderr)


def _run(args: argparse.Namespace, experiment_path: Path) -> int:
    experiment, output = _load(args, experiment_path, search=False)
    if args.dry_run:
        return 0
    from orchestrator.runner import run_experiment
    from orchestrator.summary import per_language_table

    with _InterruptWatch() as watch:
        summary = run_experiment(experiment, output, address=args.address, verbose=args.verbose)
    if "wall_s" in summary:
        print(f"ran {summary['ran']} trials in {summary['wall_s']:.1f} s; "
              f"{summary['errors']} errored, {len(summary.get('missing', []))} without result",
              file=sys.stderr)
    _report_errored(output, summary.get("errored", []))
    from trainables.storage import location

    print(per_language_table(location(summary["output"])))
    if watch.interrupted and summary.get("missing"):     # trials Tune stopped on Ctrl-C: they resume
        print(INTERRUPTED, file=sys.stderr)
        return INTERRUPTED_STATUS
    return 1 if summary.get("errors") or summary.get("missing") else 0


def _search(args: argparse.Namespace) -> int:
    experiment, output = _load(args, args.experiment, search=True)
    from orchestrator.search_settings import check_objective

    # the objective's validation data, checked before any trial (and by --dry-run)
    check_objective(experiment.search, [t for specs in experiment.candidates.values()
                                        for trials in specs.values() for t in trials])
    if args.dry_run:
        return 0
    from orchestrator.depth_search import format_study, run_depth_search

    # the search tells an interruption itself: trials handed out that never ended
    outcome = run_depth_search(experiment, output, address=args.address, verbose=args.verbose)
    for study in outcome["studies"]:
        print(format_study(study))
        print()
    print(f"Optuna storage: {outcome['storage']}; per-study summaries in {output}/search/", file=sys.stderr)
    print(f"to look at the studies (every trial's per-language validation and test scores): "
          f"pip install optuna-dashboard; {outcome['dashboard']}", file=sys.stderr)
    _report_errored(output, outcome["errored"])
    if outcome["interrupted"]:
        print(INTERRUPTED, file=sys.stderr)
        return INTERRUPTED_STATUS
    return 1 if outcome["errored"] else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alignfreeze", description="AlignFreeze experiments: realign multilingual encoders with layers "
                                        "frozen, fine-tune, evaluate zero-shot, on Ray Tune.")
    parser.add_argument("--version", action="version", version=f"alignfreeze {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run an experiment grid on Ray Tune")
    _add_run_arguments(run)

    search = commands.add_parser("search", help="search the freezing depth with Optuna (trials on Ray Tune)")
    _add_run_arguments(search)
    search.add_argument("--trials", type=int, default=None,
                        help="distinct settings to evaluate per study (overrides search.trials)")

    status = commands.add_parser("status", help="where a run or search stands (done, errored, checkpointed)")
    status.add_argument("directory", help="results directory of alignfreeze run or search (a path or a storage URI)")
    status.add_argument("--json", action="store_true",
                        help="print the status as JSON (each trial: state, scores, duration, when it ended)")
    status.add_argument("--watch", type=float, nargs="?", const=10.0, default=None, metavar="SECONDS",
                        help="print it again every SECONDS (default 10) until every trial is done; Ctrl-C stops")

    demo = commands.add_parser("demo", help="run the bundled demo (tiny mBERT, PoS, 8 trials)")
    _add_overrides(demo)
    _add_dashboard(demo)
    demo.add_argument("--output", default=Path("runs") / "demo", help="results directory (a path or a storage URI)")
    demo.add_argument("--address", default=None, help=argparse.SUPPRESS)
    demo.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)
    demo.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2), help=argparse.SUPPRESS)

    from analysis.commands import add_analyze_arguments, add_import_reference_arguments

    add_analyze_arguments(commands.add_parser("analyze", help="tables, significance tests and reports"))
    add_import_reference_arguments(commands.add_parser(
        "import-reference", help="turn the authors' per-seed CSVs into a tidy table"))

    from analysis.commands import add_export_arguments

    add_export_arguments(commands.add_parser(
        "export", help="a run directory as a tidy per-seed, per-language table (.csv or .parquet)"))

    from orchestrator.align_eval_command import add_align_eval_arguments

    add_align_eval_arguments(commands.add_parser(
        "align-eval", help="precision, recall and AER of the word aligners on gold alignments"))

    from orchestrator.align_command import add_align_arguments
    from orchestrator.score_command import add_score_arguments

    add_align_arguments(commands.add_parser(
        "align", help="word pairs of a parallel corpus from an aligner, as JSONL or pharaoh"))
    add_score_arguments(commands.add_parser(
        "score", help="score predictions made anywhere with this tool's metrics (JSON on stdout)"))

    from orchestrator.cache_command import add_cache_arguments
    from orchestrator.plan_command import add_plan_arguments

    add_plan_arguments(commands.add_parser(
        "plan", help="what a grid will cost before it runs: trials, realignments, steps, device-hours, disk"))
    add_cache_arguments(commands.add_parser("cache", help="list or prune the cache of realigned encoders"))
    from orchestrator.template_command import add_template_arguments

    add_template_arguments(commands.add_parser(
        "template", help="a launch file for Slurm (sbatch), Kubernetes (KubeRay RayJob) or AWS (ray up)"))
    commands.add_parser("keys", help="every key of an experiment file: what it takes, its default, what it does")
    return parser


def _status(args: argparse.Namespace) -> int:
    """``status``, once or every ``--watch`` seconds (redrawn on a terminal, appended in a log)."""
    import time

    from orchestrator.status import format_status, run_status

    if args.watch is not None and not args.watch > 0:
        raise SpecError(f"--watch must be a number of seconds > 0, got {args.watch}")
    while True:
        status = run_status(args.directory)
        text = json.dumps(status, indent=2) if args.json else format_status(status)
        finished = status["counts"]["done"] == status["planned"]
        if args.watch is not None and sys.stdout.isatty():
            print("\033[H\033[2J", end="")          # clear the screen: one view, redrawn
        elif args.watch is not None:
            print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}")
        print(text, flush=True)
        if args.watch is None or finished:
            # 0 once every planned trial has its result: usable in scripts
            return 0 if finished else 1
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 1


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("alignfreeze")
    except metadata.PackageNotFoundError:      # run from a checkout that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args, args.experiment)
        if args.command == "search":
            return _search(args)
        if args.command == "status":
            return _status(args)
        if args.command == "demo":
            return _run(args, preset_path("demo"))
        if args.command == "analyze":
            from analysis.commands import run_analyze

            return run_analyze(args)
        if args.command == "import-reference":
            from analysis.commands import run_import_reference

            return run_import_reference(args)
        if args.command == "export":
            from analysis.commands import run_export

            return run_export(args)
        if args.command == "align-eval":
            from orchestrator.align_eval_command import run_align_eval

            return run_align_eval(args)
        if args.command == "align":
            from orchestrator.align_command import run_align

            return run_align(args)
        if args.command == "score":
            from orchestrator.score_command import run_score

            return run_score(args)
        if args.command == "plan":
            from orchestrator.plan_command import run_plan

            return run_plan(args)
        if args.command == "template":
            from orchestrator.template_command import run_template

            return run_template(args)
        if args.command == "keys":
            from orchestrator.experiment_schema import key_reference

            print(key_reference(), end="")
            return 0
        if args.command == "cache":
            from orchestrator.cache_command import run_cache

            return run_cache(args)
    except AlignFreezeError as error:
        print(f"alignfreeze: error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return INTERRUPTED_STATUS
    return 2


if __name__ == "__main__":
    sys.exit(main())
