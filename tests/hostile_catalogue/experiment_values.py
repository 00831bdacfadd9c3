"""Values of the experiment file of the wrong type or out of range: each is refused by a
dry run, in the words of the schema (trainables/settings_schema.py)."""

from hostile_catalogue import Case
from hostile_catalogue.common import DEPTH_DEMO, dry_run, setting


def _search_demo():
    import yaml
    return yaml.safe_load(DEPTH_DEMO.read_text(encoding="utf-8"))


def _value(key_path: str, value, expected: str) -> Case:
    return Case(f"{key_path}: {value!r}", dry_run(setting(*key_path.split("."), value)), expected)


def _quoted_learning_rate(directory):
    """A quoted number (a dump would write 2e-5 bare, which is read as the number)."""
    argv = dry_run(setting("finetune", "learning_rate", 0.5))(directory)
    path = directory / "experiment.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("learning_rate: 0.5", 'learning_rate: "2e-5"'),
                    encoding="utf-8")
    return argv


def _search(key: str, value, expected: str) -> Case:
    return Case(f"search.{key}: {value!r}", dry_run(setting("search", key, value), command="search",
                                                     base=_search_demo), expected)


CASES = [
    # booleans are never strings or numbers
    _value("freeze_embeddings", "false", "freeze_embeddings must be true or false, got 'false'"),
    _value("freeze_embeddings", "no", "freeze_embeddings must be true or false, got 'no'"),
    _value("freeze_embeddings", 1, "freeze_embeddings must be true or false, got 1"),
    _value("compile", "true", "compile must be true or false, got 'true'"),
    _value("realignment.projection", "no", "realignment.projection must be true or false, got 'no'"),
    # fine-tuning
    _value("finetune.epochs", -1, "finetune.epochs must be an integer from 1 to 1000, got -1"),
    _value("finetune.epochs", 0, "finetune.epochs must be an integer from 1 to 1000, got 0"),
    _value("finetune.epochs", "two", "finetune.epochs must be an integer from 1 to 1000, got 'two'"),
    _value("finetune.epochs", 10**12, "finetune.epochs must be an integer from 1 to 1000, got 1000000000000"),
    _value("finetune.epochs", 2.5, "finetune.epochs must be an integer from 1 to 1000, got 2.5"),
    _value("finetune.epochs", True, "finetune.epochs must be an integer from 1 to 1000, got True (YAML reads"),
    _value("finetune.batch_size", 0, "finetune.batch_size must be an integer from 1 to 65536, got 0"),
    _value("finetune.batch_size", 2.5, "finetune.batch_size must be an integer from 1 to 65536, got 2.5"),
    _value("finetune.learning_rate", "abc", "finetune.learning_rate must be a number > 0 and <= 1, got 'abc'"),
    Case("finetune.learning_rate: '2e-5' (quoted)", _quoted_learning_rate,
         "got '2e-5' (a number, not a string: remove the quotes)"),
    _value("finetune.learning_rate", -1, "finetune.learning_rate must be a number > 0 and <= 1, got -1"),
    _value("finetune.learning_rate", 0, "finetune.learning_rate must be a number > 0 and <= 1, got 0"),
    _value("finetune.learning_rate", float("nan"), "finetune.learning_rate must be a number > 0 and <= 1, got nan"),
    _value("finetune.learning_rate", float("inf"), "finetune.learning_rate must be a number > 0 and <= 1, got inf"),
    _value("finetune.warmup_ratio", 5, "finetune.warmup_ratio must be a number from 0 to 1, got 5"),
    _value("finetune.weight_decay", -0.1, "finetune.weight_decay must be a number from 0 to 1, got -0.1"),
    _value("finetune.dropout", 2.0, "finetune.dropout must be a number >= 0 and < 1, or null"),
    _value("finetune.dropout", 1, "finetune.dropout must be a number >= 0 and < 1, or null"),
    _value("finetune.max_length", 0, "finetune.max_length must be an integer from 8 to 8192, got 0"),
    _value("finetune.eval_max_length", 10**6, "finetune.eval_max_length must be an integer from 8 to 8192"),
    _value("finetune.max_train_examples", 0, "finetune.max_train_examples must be an integer >= 1, or null (all), got 0"),
    _value("finetune.max_eval_examples", -5, "finetune.max_eval_examples must be an integer >= 1, or null (all), got -5"),
    _value("finetune.eval_batch_size", "64", "finetune.eval_batch_size must be an integer from 1 to 65536, got '64'"),
    _value("finetune.clip_grad_norm", 0, "finetune.clip_grad_norm must be a number > 0, or null"),
    _value("finetune.batching", "sorted", "finetune.batching must be one of random, length_grouped, got 'sorted'"),
    _value("finetune.pos.epochs", 0, "finetune.pos.epochs must be an integer from 1 to 1000, got 0"),
    _value("finetune.pos.learnig_rate", 1e-5, "unknown key in finetune.pos 'learnig_rate'; did you mean learning_rate"),
    # realignment
    _value("realignment.steps", True, "realignment.steps must be 'auto' or an integer from 1 to 1000000000, got True"),
    _value("realignment.steps", 0, "realignment.steps must be 'auto' or an integer"),
    _value("realignment.steps", "many", "realignment.steps must be 'auto' or an integer"),
    _value("realignment.max_pairs", 0, "realignment.max_pairs must be an integer >= 1, or null (all), got 0"),
    _value("realignment.temperature", 0, "realignment.temperature must be a number > 0 and <= 100, got 0"),
    _value("realignment.layer", 99, "realignment.layer 99 is out of range for tiny-mbert"),
    _value("realignment.layer", -1, "got -1 (the reference's -1 is 'penultimate')"),
    _value("realignment.during_weight", "x", "realignment.during_weight must be a number from 0 to 1000, got 'x'"),
    _value("realignment.batch_size", 0, "realignment.batch_size must be an integer from 1 to 65536, got 0"),
    _value("realignment.learning_rate", 5, "realignment.learning_rate must be a number > 0 and <= 1, got 5"),
    _value("realignment.max_length", 4, "realignment.max_length must be an integer from 8 to 8192, got 4"),
    _value("realignment.projection_dim", 0, "realignment.projection_dim must be an integer from 1 to 65536"),
    _value("realignment.loss_reduction", "sum", "realignment.loss_reduction must be one of queries, sentence_pairs"),
    _value("realignment.aligner_settings.symmetrc", True,
           "unknown setting of aligner dico in realignment.aligner_settings 'symmetrc'; did you mean symmetric"),
    _value("realignment.aligner_settings.symmetric", "yes",
           "realignment.aligner_settings.symmetric must be true or false, got 'yes'"),
    # top level, resources, ray, checkpoint
    _value("device", "gpu", "device must be one of auto, cpu, cuda, got 'gpu'"),
    _value("precision", "fp16", "precision must be one of fp32, tf32, bf16, got 'fp16'"),
    _value("seeds", [1, 2**70], "seeds must be an integer from 0 to 4294967295, got 1180591620717411303424"),
    _value("seeds", [-1], "seeds must be an integer from 0 to 4294967295, got -1"),
    _value("resources.cpus", 1.7, "resources.cpus must be an integer from 1 to 4096, got 1.7"),
    _value("resources.cpus", "2", "resources.cpus must be an integer from 1 to 4096, got '2'"),
    _value("resources.gpus", -1, "resources.gpus must be a number from 0 to 1024, got -1"),
    _value("ray.max_failures", "abc", "ray.max_failures must be an integer from 0 to 1000, got 'abc'"),
    _value("ray.max_concurrent_trials", "abc", "ray.max_concurrent_trials must be an integer from 1 to 100000"),
    _value("ray.reuse_actors", "false", "ray.reuse_actors must be true or false, got 'false'"),
    _value("checkpoint.every_minutes", 0, "checkpoint.every_minutes must be a number > 0, or null"),
    _value("checkpoint.keep", "best", "checkpoint.keep must be one of none, final, all, got 'best'"),
    # search
    _search("trials", 0, "search.trials must be an integer from 1 to 100000, got 0"),
    _search("seed", -3, "search.seed must be an integer from 0 to 4294967295, got -3"),
    _search("parallel", 1.5, "search.parallel must be an integer from 1 to 100000, or null"),
    _search("baseline", "yes", "search.baseline must be true or false, got 'yes'"),
    _search("sampler", "cmaes", "search.sampler must be one of tpe, random, grid, got 'cmaes'"),
]


CASES += [
    _value("finetune.max_length", 1024, "finetune.max_length 1024 is longer than tiny-mbert takes (512 tokens)"),
    _value("finetune.pos.eval_max_length", 600,
           "finetune.pos.eval_max_length 600 is longer than tiny-mbert takes (512 tokens)"),
    _value("realignment.max_length", 513, "realignment.max_length 513 is longer than tiny-mbert takes (512 tokens)"),
]
