"""``alignfreeze plan EXPERIMENT.yaml``: what a grid will cost, before it runs.

    alignfreeze plan EXPERIMENT.yaml [--throughput FILE] [--steps N] [--json]

The experiment is validated as ``alignfreeze run --dry-run`` validates it;
nothing is trained, downloaded or started. The computation is
``orchestrator.plan``; this module parses the arguments and lays the plan
out for a terminal (or prints it as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from orchestrator.model_costs import SUSTAINED_FLOPS


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", type=Path, help="experiment YAML file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="change the experiment file, as alignfreeze run does (finetune.epochs=1)")
    parser.add_argument("--throughput", type=Path, default=None, metavar="FILE",
                        help="measured throughput, JSON or YAML: model -> {finetune_seq_per_s, "
                             "realign_pairs_per_s} (default: the estimates of orchestrator/model_costs.py)")
    parser.add_argument("--steps", type=int, default=None, metavar="N",
                        help="compare with a fixed realignment budget of N steps "
                             "(default with steps: auto: the mean of the auto steps)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def run_plan(args: argparse.Namespace) -> int:
    from orchestrator.experiment import load_experiment_file
    from orchestrator.model_costs import load_throughput_file
    from orchestrator.plan import build_plan

    throughput = load_throughput_file(args.throughput) if args.throughput is not None else None
    experiment = load_experiment_file(args.experiment, args.overrides)
    plan = build_plan(experiment, throughput, args.steps)
    print(json.dumps(plan.to_dict(), indent=2) if args.json else format_plan(plan))
    return 0


# ------------------------------------------------------------------- formatting
def _n(value: float) -> str:
    return f"{value:,.0f}"


def _h(hours: float) -> str:
    return "<0.1" if 0 < hours < 0.05 else f"{hours:,.1f}"


def _bytes(size: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size:,.0f} B"


def _where(where: str) -> str:
    """A local path relative to the working directory when under it."""
    try:
        return os.path.relpath(where) if os.path.isabs(where) and not os.path.relpath(where).startswith("..") \
            else where
    except ValueError:
        return where


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                             for i, cell in enumerate(row)).rstrip() for row in rows]


def format_plan(plan) -> str:
    trials = plan.trials
    realigned = [t for t in trials if t.realign_steps]
    schedules = sorted({t.schedule for t in realigned})
    source = f" ({plan.source})" if plan.source else ""
    lines = [f"plan of {plan.name}{source}: nothing has run; every duration below is an ESTIMATE"]
    if plan.search:
        lines.append(plan.search)
    lines.append(f"trials: {len(trials)} ({len(trials) - len(realigned)} fine-tuning only, "
                 f"{len(realigned)} realigned" + (f": {', '.join(schedules)}" if schedules else "") + ")")
    lines += _realignment_lines(plan)
    lines += ["", "optimizer steps per trial"] + _steps_lines(plan)
    lines += ["", "device-hours on one GPU"] + _hours_lines(plan)
    lines += ["", "disk"] + _disk_lines(plan)
    return "\n".join(lines)


def _realignment_lines(plan) -> list[str]:
    before = sum(1 for t in plan.trials if t.realignment is not None)
    during = sum(1 for t in plan.trials if t.realign_steps and t.schedule == "during")
    inline = [f"  {during} trial(s) realign during fine-tuning: never cached nor shared"] if during else []
    if not before:
        return ["realignments: none before fine-tuning (nothing to cache or share)"] + inline
    setting = ", ".join(plan.steps_setting)
    how = ("each task its own: its steps are its fine-tuning's" if plan.steps_setting == ["auto"]
           else "trials that differ only in their task share one")
    lines = [f"realignments: {len(plan.realignments)} distinct for {before} trials after sharing "
             f"(realignment.steps: {setting}; {how})"]
    budget = plan.budget
    if budget is not None:
        change = budget.realign_h - budget.current_realign_h
        share = f", {change / budget.current_realign_h:+.0%}" if budget.current_realign_h else ""
        lines.append(f"  a fixed budget of {_n(budget.steps)} steps ({budget.why}): {budget.realignments} "
                     f"realignments, {_h(budget.realign_h)} device-hours of realignment instead of "
                     f"{_h(budget.current_realign_h)} ("
                     + (f"{'+' if change >= 0 else '-'}{_h(abs(change))} h" if abs(change) >= 0.05 else "")
                     + (share if abs(change) >= 0.05 else share[2:]) + f"); a cache of "
                     f"{_bytes(budget.cache_bytes)} instead of {_bytes(plan.disk.cache_bytes)}")
    return lines + inline


def _steps_lines(plan) -> list[str]:
    all_models = {m.model for m in plan.models}
    groups: dict[tuple, list] = {}
    for size in plan.sizes:
        groups.setdefault((size.task, size.examples, size.sequences, size.batch_size, size.epochs,
                           size.how, size.where), []).append(size.model)
    rows = [["task", "model", "examples", "sequences", "batch x epochs", "fine-tuning", "realignment", "from"]]
    for (task, examples, sequences, batch, epochs, how, where), models in groups.items():
        steps = {t.finetune_steps for t in plan.trials if t.task == task and t.model in models}
        realign = sorted({(t.realign_steps, t.schedule) for t in plan.trials
                          if t.task == task and t.model in models and t.realign_steps})
        realign_text = ", ".join(_n(s) + (" (during)" if schedule == "during" else "") for s, schedule in realign)
        model_text = "all" if set(models) == all_models else ", ".join(m.rstrip("/").split("/")[-1] for m in models)
        rows.append([task, model_text, _n(examples), _n(sequences), f"{batch} x {epochs}",
                     ", ".join(_n(s) for s in sorted(steps)), realign_text or "-", f"{how}: {_where(where)}"])
    lines = _table(rows, {2, 3, 5, 6})
    if any(s.sequences != s.examples for s in plan.sizes):
        estimated = any(s.sequences != s.examples and s.how != "counted" for s in plan.sizes)
        lines.append("  sequences: what a batch holds (QA: windows of 96 sub-words overlapping by 32"
                     + ("; not counted: 2.73 a question, trainables/dataset_sizes.py)" if estimated else ")"))
    batches = sorted({r.pairs // max(r.steps, 1) for r in plan.realignments})
    corpus = plan.corpus
    if corpus:
        longest = max((r.pairs for r in plan.realignments), default=0)
        capped = f", at most {_n(corpus['max_pairs'])} a language" if corpus.get("max_pairs") else ""
        lines.append(f"  realignment: {'/'.join(map(str, batches)) or '16'} sentence pairs a step; corpus of "
                     f"{corpus['languages']} languages, {_n(corpus['pairs'])} pairs{capped}; the longest "
                     f"realignment reads {_n(longest)} pairs ({longest / max(corpus['pairs'], 1):.1%} of it)")
    return lines


def _hours_lines(plan) -> list[str]:
    rows = [["model", "fine-tune seq/s", "realign pairs/s", "trials", "realignments", "fine-tuning",
             "realignment", "evaluation", "total"]]
    for cost in plan.models:
        label = "" if cost.throughput.source == "estimate" else f" {cost.throughput.source}"
        rows.append([cost.model, f"{cost.throughput.finetune_seq_per_s:,.0f}{label}",
                     f"{cost.throughput.realign_pairs_per_s:,.0f}", str(cost.trials), str(cost.realignments),
                     _h(cost.finetune_h), _h(cost.realign_h), _h(cost.eval_h), _h(cost.total_h)])
    rows.append(["total", "", "", str(sum(c.trials for c in plan.models)),
                 str(sum(c.realignments for c in plan.models)), _h(sum(c.finetune_h for c in plan.models)),
                 _h(sum(c.realign_h for c in plan.models)), _h(sum(c.eval_h for c in plan.models)),
                 _h(plan.total_h)])
    lines = _table(rows, {1, 2, 3, 4, 5, 6, 7, 8})
    if any(c.throughput.source == "estimate" for c in plan.models):
        lines += _note(f"throughput: an ESTIMATE, not a measurement: training FLOPs at a sustained "
                       f"{SUSTAINED_FLOPS / 1e12:.0f} TFLOP/s (about 40% of an A100's fp32 peak), full "
                       f"96-sub-word sequences (orchestrator/model_costs.py); give measured figures with "
                       f"--throughput FILE")
    lines += _note("evaluation: coarse test-set sizes per language (trainables/dataset_sizes.py), scaled "
                   "from the fine-tuning throughput by the FLOPs of the evaluation length")
    return lines


def _note(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, 110, initial_indent="  ", subsequent_indent="    ")


def _disk_lines(plan) -> list[str]:
    disk = plan.disk
    trials = len(plan.trials)
    rows = [["realigned-encoder cache", _bytes(disk.cache_bytes),
             f"{disk.cache_encoders} encoder(s) x parameters x 4 bytes, in {disk.cache_location}"],
            ["checkpoints", _bytes(disk.checkpoint_bytes),
             {"none": "kept after the run (checkpoint.keep: none): each trial's are removed with its result",
              "final": "kept after the run (checkpoint.keep: final): each trial's fine-tuned weights, "
                       "parameters x 4 bytes",
              "all": "kept after the run (checkpoint.keep: all): each trial's latest, model + Adam state"
              }[disk.keep] + f"; a running trial holds up to 2 of 3 x parameters x 4 bytes "
                             f"(up to {_bytes(disk.largest_checkpoint_bytes)})"],
            ["results", _bytes(disk.results_bytes),
             f"result files and Ray's logs, about {_bytes(disk.results_bytes / max(trials, 1))} a trial"]]
    return _table(rows, {1}) + _note("every figure is an estimate")
