"""The declared schema of the experiment file: every section and key, its type, range and meaning.

The sections a trial reads (``finetune``, ``realignment``, its aligners'
settings, ``checkpoint``) are declared in ``trainables.settings_schema``;
this module adds the top level and the driver's sections (``ray``,
``resources``, ``search``) and puts them together in ``SECTIONS``, in the
order the README's key reference lists them (``alignfreeze keys`` prints it;
a test keeps the README equal to it). The parsers (``orchestrator.experiment``,
``ray_settings``, ``search_settings``) take their keys and checks from here.
"""

from __future__ import annotations

from typing import Any

from trainables.settings_schema import (ALIGNER_SETTINGS, CHECKPOINT, FINETUNE, MAX_SEED, REALIGNMENT,
                                        REALIGNMENT_STRUCTURE, Setting, section)

TOP = section([
    Setting("name", "structure", "a name (not a path): results go to runs/<name> "
            "(default: the file's name)"),
    Setting("description", "string", "free text about the experiment", null="none"),
    Setting("models", "structure", "Hub ids, local model folders or tiny-mbert / tiny-distilmbert / tiny-xlmr"),
    Setting("tasks", "structure", "pos, ner, nli, qa"),
    Setting("strategies", "structure", "baseline, full, front, back, front:K, back:K, range:A-B, "
            "each optionally +embeddings (default: [baseline])"),
    Setting("aligners", "structure", "dico, pharaoh, eflomal, simalign (default: [dico])"),
    Setting("schedules", "structure", "before, during (default: [before])"),
    Setting("seeds", "structure", f"integers from 0 to {MAX_SEED}: every trial runs once per seed"),
    Setting("freeze_embeddings", "boolean", "also freeze the embeddings when realigning"),
    Setting("languages", "structure", "target languages: a list for every task, or a mapping task -> list "
            "(default: the paper's)"),
    Setting("data", "structure", "per task: train, eval, validation locations (see below)"),
    Setting("realignment", "structure", "realignment settings and data (see below)"),
    Setting("finetune", "structure", "fine-tuning settings, common or per task (see below)"),
    Setting("resources", "structure", "what one trial asks Ray for (see below)"),
    Setting("device", "choice", "where trials compute", choices="trainables.trial_spec:DEVICES"),
    Setting("precision", "choice", "fp32 (the reference's), tf32 or bf16 autocast",
            choices="trainables.trial_spec:PRECISIONS"),
    Setting("compile", "boolean", "torch.compile the task model"),
    Setting("ray", "structure", "Ray Tune and connection options (see below)"),
    Setting("search", "structure", "a depth search instead of strategies (see below)"),
    Setting("cache", "string", "where realigned encoders are kept: a path or a storage URI",
            null="$ALIGNFREEZE_CACHE/realigned"),
    Setting("checkpoint", "structure", "when trials checkpoint and what they keep (see below)"),
    Setting("loggers", "structure", "where trials' curves and results go: tensorboard, mlflow, wandb "
            "(default: [tensorboard]; [] for none)"),
    Setting("tensorboard", "structure", "the TensorBoard curves each trial writes (see below)"),
    Setting("mlflow", "structure", "MLflow tracking, with mlflow in loggers (see below)"),
    Setting("wandb", "structure", "Weights & Biases, with wandb in loggers (see below)"),
])

# The loggers' settings (``orchestrator.logger_settings`` reads them); the environment's
# MLFLOW_* and WANDB_* variables fill what the file leaves out.
TENSORBOARD = section([
    Setting("every", "integer", "optimizer steps between two points of a curve (a phase's last step "
            "always has one)", 1, 1_000_000),
])
MLFLOW = section([
    Setting("tracking_uri", "string", "the tracking server or store (http://..., file:..., sqlite:...)",
            null="$MLFLOW_TRACKING_URI, else ./mlruns"),
    Setting("experiment_name", "string", "the MLflow experiment the runs go to",
            null="$MLFLOW_EXPERIMENT_NAME, else the experiment's name"),
])
WANDB = section([
    Setting("project", "string", "the W&B project", null="$WANDB_PROJECT, else the experiment's name"),
    Setting("entity", "string", "the W&B user or team", null="$WANDB_ENTITY, else your default entity"),
    Setting("group", "string", "the group of the runs", null="$WANDB_RUN_GROUP, else the experiment's name"),
    Setting("mode", "choice", "online, offline (files under $WANDB_DIR, synced later) or disabled",
            choices=("online", "offline", "disabled"), null="$WANDB_MODE, else online"),
])

DATA = section([
    Setting("train", "structure", "a file or directory (hub: the task's Hub dataset; PoS has none)"),
    Setting("eval", "structure", "hub, a directory in the task's layout, or a mapping language -> location"),
    Setting("validation", "structure", "held-out data, as eval; a depth search selects on it"),
])

RESOURCE = section([
    Setting("cpus", "integer", "CPUs per trial", 1, 4096),
    Setting("gpus", "number", "GPUs per trial (a fraction shares one)", 0, 1024),
])
RESOURCE_SECTIONS = section([
    Setting("default", "structure", "{cpus, gpus} of every trial"),
    Setting("tasks", "structure", "task -> {cpus, gpus}, over default"),
    Setting("models", "structure", "model -> {cpus, gpus}, over the task's"),
])

RAY = section([
    Setting("address", "string", "an existing cluster: auto or HOST:PORT (default: start Ray here)"),
    Setting("max_concurrent_trials", "integer", "trials running at once at most", 1, 100_000,
            null="as many as fit"),
    Setting("reuse_actors", "boolean", "run a worker's next trial in the same process"),
    Setting("max_failures", "integer", "restarts of a failed trial from its checkpoint", 0, 1_000),
    Setting("num_cpus", "integer", "CPUs of the Ray started here", 1, 100_000),
    Setting("num_gpus", "integer", "GPUs of the Ray started here", 0, 100_000),
])

SEARCH = section([
    Setting("trials", "integer", "distinct freezing settings evaluated per study", 1, 100_000),
    Setting("sides", "structure", "front, back, window (default: [front, back])"),
    Setting("depths", "structure", "[lowest, highest] frozen blocks (highest null: blocks - 1)"),
    Setting("objective", "choice", "what Optuna maximises, on validation data",
            choices="orchestrator.search_settings:OBJECTIVES"),
    Setting("metric", "string", "the objective's metric", null="the task's primary metric"),
    Setting("sampler", "choice", "Optuna's sampler", choices="orchestrator.search_settings:SAMPLERS"),
    Setting("seed", "integer", "the sampler's seed", 0, MAX_SEED),
    Setting("parallel", "integer", "settings in flight at most", 1, 100_000, null="as the cluster has room"),
    Setting("baseline", "boolean", "also fine-tune without realignment, once per seed"),
    Setting("storage", "string", "an Optuna storage URL", null="SQLite in the results directory"),
])

# (heading, where, declared keys) of the key reference, in the README's order
SECTIONS: list[tuple[str, str, dict[str, Setting]]] = [
    ("Top level", "", TOP),
    ("data.<task>", "data.<task>", DATA),
    ("finetune (or finetune.<task>)", "finetune", FINETUNE),
    ("realignment", "realignment", {**REALIGNMENT_STRUCTURE, **REALIGNMENT}),
    *[(f"realignment.aligner_settings ({aligner})", "realignment.aligner_settings", settings)
      for aligner, settings in ALIGNER_SETTINGS.items() if settings],
    ("resources (or resources.default / .tasks.<task> / .models.<model>)", "resources",
     {**RESOURCE, **RESOURCE_SECTIONS}),
    ("ray", "ray", RAY),
    ("search", "search", SEARCH),
    ("checkpoint", "checkpoint", CHECKPOINT),
    ("tensorboard", "tensorboard", TENSORBOARD),
    ("mlflow", "mlflow", MLFLOW),
    ("wandb", "wandb", WANDB),
]


def key_reference(defaults: dict[str, dict[str, Any]] | None = None) -> str:
    """The key reference as Markdown: one table per section (key, takes, default, what it does)."""
    defaults = known_defaults() if defaults is None else defaults
    lines: list[str] = []
    for heading, where, declared in SECTIONS:
        lines += [f"**{heading}**", "", "| key | takes | default | what it does |", "|---|---|---|---|"]
        section_defaults = defaults.get(heading, {})
        for key, setting in declared.items():
            takes = setting.expected() if setting.type != "structure" else "—"
            default = section_defaults.get(key, "")
            shown = f"`{_yaml(default)}`" if key in section_defaults else ""
            lines.append(f"| `{key}` | {_cell(takes)} | {shown} | {_cell(setting.doc)} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def known_defaults() -> dict[str, dict[str, Any]]:
    """Each section's defaults, read from the code that uses them (nothing restated here)."""
    import dataclasses

    from orchestrator.ray_settings import BUILT_IN_RESOURCES, RAY_DEFAULTS
    from orchestrator.search_settings import SearchSettings
    from trainables.checkpoint_policy import CheckpointPolicy
    from trainables.realignment.aligners import DICO_SETTINGS
    from trainables.realignment.eflomal_aligner import DEFAULT_SETTINGS as EFLOMAL
    from trainables.realignment.pretokenization import DEFAULT_PRETOKENIZER
    from trainables.realignment.realigner import RealignSettings
    from trainables.realignment.similarity_aligner import DEFAULT_SETTINGS as SIMALIGN
    from trainables.tasks.base import FinetuneSettings
    from trainables.tasks.registry import TASKS
    from trainables.training_curves import DEFAULT_EVERY
    from trainables.trial_spec import TrialSpec

    def fields(cls: Any) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    from trainables.tasks.zh_resegmentation import DEFAULT_SEGMENTATION

    # dropout: None is the architecture's own rate; zh_segmentation is NER's alone
    finetune = {**fields(FinetuneSettings), "dropout": None, "zh_segmentation": DEFAULT_SEGMENTATION}
    for key in FINETUNE:        # a default that differs by task is listed per task
        values = {name: task.defaults[key] for name, task in TASKS.items() if key in task.defaults}
        if values and len(set(values.values())) > 1:
            finetune[key] = ", ".join(f"{name} {value}" for name, value in values.items())
        elif values:
            finetune[key] = next(iter(values.values()))
    spec = fields(TrialSpec)
    search = fields(SearchSettings)
    return {
        "Top level": {"freeze_embeddings": spec["freeze_embeddings"], "device": spec["device"],
                      "precision": spec["precision"], "compile": spec["compile"]},
        "finetune (or finetune.<task>)": {k: v for k, v in finetune.items() if k in FINETUNE},
        "realignment": {**{k: v for k, v in fields(RealignSettings).items() if k in REALIGNMENT},
                        "pretokenizer": DEFAULT_PRETOKENIZER},
        "realignment.aligner_settings (dico)": DICO_SETTINGS,
        "realignment.aligner_settings (eflomal)": EFLOMAL,
        "realignment.aligner_settings (simalign)": SIMALIGN,
        "resources (or resources.default / .tasks.<task> / .models.<model>)": dict(BUILT_IN_RESOURCES),
        "ray": dict(RAY_DEFAULTS),
        "search": {k: v for k, v in search.items() if k in SEARCH and k not in ("sides", "depths")},
        "checkpoint": fields(CheckpointPolicy),
        "tensorboard": {"every": DEFAULT_EVERY},
    }
