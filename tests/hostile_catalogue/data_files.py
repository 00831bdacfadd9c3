"""Hostile data files and model folders, each refused by ``run FILE --dry-run`` before any trial.

Every case writes its files beside the experiment file (relative paths in
an experiment file are relative to it) and changes the demo to read them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from hostile_catalogue import Case
from hostile_catalogue.common import demo, write_experiment

Files = dict[str, "str | bytes"]

SENTENCE = ("# text = I see .\n"
            "1\tI\tI\tPRON\t_\t_\t2\tnsubj\t_\t_\n"
            "2\tsee\tsee\tVERB\t_\t_\t0\troot\t_\t_\n"
            "3\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_\n\n")
ENGLISH = "Hello world .\nI see a cat .\nGood night\n"
FRENCH = "Bonjour monde .\nJe vois un chat .\nBonne nuit\n"
LINKS = "0-0 1-1\n1-1 3-3\n0-0\n"
XNLI_EN = "bundled:xnli/dev-en.first500.tsv"
XQUAD_EN = "bundled:qa/xquad/xquad.en.first2articles.json"
TYDI_EN = "bundled:qa/tydiqa_goldp_en_train.first300.json"


def files_and(files: Files, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], list[str]]:
    """``run FILE --dry-run`` on the demo changed by ``change``, with ``files`` written beside it."""
    def argv(directory: Path) -> list[str]:
        for name, content in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        experiment = demo()
        change(experiment)
        return ["run", str(write_experiment(directory, experiment)), "--dry-run"]
    return argv


def french_eval(content: str | bytes) -> Callable[[Path], list[str]]:
    """The demo with ``content`` as the French PoS test file."""
    return files_and({"fr.conllu": content},
                     lambda e: e["data"]["pos"]["eval"].__setitem__("fr", "fr.conllu"))


def french_parallel(english: str | bytes, french: str | bytes) -> Callable[[Path], list[str]]:
    return files_and({"en.txt": english, "fr.txt": french},
                     lambda e: e["realignment"]["parallel"].__setitem__("fr", {"source": "en.txt",
                                                                               "target": "fr.txt"}))


def french_tsv(content: str) -> Callable[[Path], list[str]]:
    return files_and({"fr.tsv": content}, lambda e: e["realignment"]["parallel"].__setitem__("fr", "fr.tsv"))


def french_dictionary(content: str | bytes) -> Callable[[Path], list[str]]:
    return files_and({"en-fr.txt": content},
                     lambda e: e["realignment"]["dictionaries"].__setitem__("fr", "en-fr.txt"))


def french_pharaoh(links: str | bytes) -> Callable[[Path], list[str]]:
    """The demo realigning French only with the pharaoh aligner, on a 3-pair corpus."""
    def change(experiment: dict[str, Any]) -> None:
        experiment["aligners"] = ["pharaoh"]
        realignment = experiment["realignment"]
        realignment.pop("dictionaries")
        realignment.update(languages=["fr"], parallel={"fr": {"source": "en.txt", "target": "fr.txt"}},
                           alignments={"fr": "fr.align"})
    return files_and({"en.txt": ENGLISH, "fr.txt": FRENCH, "fr.align": links}, change)


def task_file(task: str, train: str, evaluation: dict[str, str], files: Files) -> Callable[[Path], list[str]]:
    """The demo on another task (baseline only) with its data and ``files``."""
    def change(experiment: dict[str, Any]) -> None:
        experiment.update(tasks=[task], strategies=["baseline"], languages=[k for k in evaluation if k != "en"])
        experiment["data"] = {task: {"train": train, "eval": evaluation}}
    return files_and(files, change)


# ---------------------------------------------------------------- model folders

def safetensors(tensors: int = 1) -> bytes:
    header = {f"t{i}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(tensors)}
    encoded = json.dumps(header).encode()
    return len(encoded).to_bytes(8, "little") + encoded + b"\0" * (4 * tensors)


BERT_CONFIG = json.dumps({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 8,
                          "num_attention_heads": 2, "intermediate_size": 8, "vocab_size": 10})
TOKENIZER = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n"


def model(files: Files) -> Callable[[Path], list[str]]:
    """The demo on a model folder ``model/`` holding ``files`` (a model path is relative to the
    current directory, which the catalogue sets to the case's directory)."""
    return files_and({f"model/{name}": content for name, content in files.items()},
                     lambda e: e.__setitem__("models", ["./model"]))


SOUND = {"config.json": BERT_CONFIG, "model.safetensors": safetensors(), "vocab.txt": TOKENIZER}


def without(name: str) -> Files:
    return {k: v for k, v in SOUND.items() if k != name}


CASES = [
    # task files
    Case("conllu line with 4 columns", french_eval(SENTENCE + "1\tOui\toui\tINTJ\n\n"),
         "fr.conllu:6: expected 10 tab-separated columns, found 4"),
    Case("conllu UPOS all _", french_eval(SENTENCE.replace("PRON", "_").replace("VERB", "_").replace("PUNCT", "_")),
         "no annotated word to score (test data): every UPOS tag is '_'"),
    Case("conllu unknown UPOS tag", french_eval(SENTENCE.replace("VERB", "VERBE")),
         "fr.conllu:3: unknown UPOS tag 'VERBE'"),
    Case("conllu not UTF-8", french_eval(SENTENCE.replace("see", "vé").encode("latin-1")),
         "fr.conllu: not UTF-8 text"),
    Case("conllu UTF-16", french_eval(SENTENCE.encode("utf-16")), "fr.conllu: not UTF-8 text"),
    Case("conllu empty", french_eval(""), "fr.conllu: no sentence in CoNLL-U data"),
    Case("conllu comments only", french_eval("# text = nothing\n\n"), "fr.conllu: no sentence in CoNLL-U data"),
    Case("missing validation file",
         files_and({}, lambda e: e["data"]["pos"].__setitem__("validation", {"fr": "dev-fr.conllu"})),
         "dev-fr.conllu: file or directory not found"),
    Case("malformed validation file",
         files_and({"dev-fr.conllu": "1\tOui\n"},
                   lambda e: e["data"]["pos"].__setitem__("validation", {"fr": "dev-fr.conllu"})),
         "dev-fr.conllu:1: expected 10 tab-separated columns, found 2"),
    Case("nli unknown label",
         task_file("nli", XNLI_EN, {"en": XNLI_EN, "de": "de.tsv"}, {"de.tsv": "Ein Satz\tNoch einer\tmaybe\n"}),
         "de.tsv:1: unknown NLI label 'maybe'"),
    Case("nli line without tabs",
         task_file("nli", XNLI_EN, {"en": XNLI_EN, "de": "de.tsv"}, {"de.tsv": "a line without tabs\n"}),
         "de.tsv:1: expected premise<TAB>hypothesis<TAB>label"),
    Case("qa answer not in its context",
         task_file("qa", TYDI_EN, {"en": XQUAD_EN, "de": "de.json"}, {"de.json": json.dumps(
             {"data": [{"title": "x", "paragraphs": [{"context": "abc", "qas": [
                 {"id": "1", "question": "q", "answers": [{"text": "zz", "answer_start": 0}]}]}]}]})}),
         "answer 'zz' is not in the context"),
    Case("qa truncated JSON", task_file("qa", TYDI_EN, {"en": XQUAD_EN, "de": "de.json"}, {"de.json": '{"data": [{'}),
         "de.json:1: not JSON"),
    # realignment corpora and dictionaries
    Case("parallel files of different lengths", french_parallel(ENGLISH, FRENCH + "Encore\n"),
         "parallel files differ in length: 3 lines vs 4"),
    Case("parallel files empty", french_parallel("", ""), "parallel files are empty"),
    Case("parallel file not UTF-8", french_parallel(ENGLISH, FRENCH.replace("monde", "été").encode("latin-1")),
         "fr.txt: not UTF-8 text"),
    Case("tsv line without a tab", french_tsv("Hello\tBonjour\nGood night Bonne nuit\n"),
         "fr.tsv:2: expected 'english<TAB>translation', found 1 fields"),
    Case("tsv line with three fields", french_tsv("Hello\tBonjour\tSalut\n"),
         "fr.tsv:1: expected 'english<TAB>translation', found 3 fields"),
    Case("dictionary line of three words", french_dictionary("cat chat\nthe dog le chien\n"),
         "en-fr.txt:2: expected 'english<TAB>translation'"),
    Case("dictionary empty", french_dictionary("\n\n"), "en-fr.txt: dictionary is empty"),
    Case("dictionary not UTF-8", french_dictionary("summer été\n".encode("latin-1")), "en-fr.txt: not UTF-8 text"),
    # pharaoh alignment files against their corpus
    Case("pharaoh shorter than its corpus", french_pharaoh("0-0 1-1\n1-1 3-3\n"),
         "fr.align:3: 2 alignment line(s) for the 3 sentence pairs of "),
    Case("pharaoh longer than its corpus", french_pharaoh(LINKS + "0-0\n"),
         "fr.align:4: 4 alignment lines for the 3 sentence pairs of "),
    Case("pharaoh link out of range", french_pharaoh("0-0 1-1\n1-1 3-7\n0-0\n"),
         "fr.align:2: link 3-7 outside sentence pair 2, of 5x5 words (pretokenizer reference)"),
    Case("pharaoh garbage token", french_pharaoh("0-0 1-1\n1-1 3:3\n0-0\n"),
         "fr.align:2: bad alignment link '3:3'"),
    Case("pharaoh superscript digit", french_pharaoh("0-0 1-1\n1-1 ²-3\n0-0\n"),
         "fr.align:2: bad alignment link '²-3'"),
    Case("pharaoh not UTF-8", french_pharaoh("0-0\n1-1 é\n0-0\n".encode("latin-1")), "fr.align: not UTF-8 text"),
    Case("pharaoh link out of range on the last pair", french_pharaoh("0-0 1-1\n1-1 3-3\n0-3\n"),
         "fr.align:3: link 0-3 outside sentence pair 3, of 2x2 words"),
    # model folders
    Case("model folder without weights", model(without("model.safetensors")),
         "model folder without weights: expected model.safetensors or pytorch_model.bin"),
    Case("model folder without config", model(without("config.json")),
         "model folder without config.json"),
    Case("model config with unknown model_type",
         model({**SOUND, "config.json": json.dumps({"model_type": "gpt2", "n_layer": 2})}),
         "config.json has model_type 'gpt2'; supported: bert, "),
    Case("model config not JSON", model({**SOUND, "config.json": "{model_type: bert"}),
         "config.json is not valid JSON (line 1: "),
    Case("truncated safetensors", model({**SOUND, "model.safetensors": safetensors(4)[:-6]}),
         "model.safetensors is truncated: "),
    Case("safetensors that is not one", model({**SOUND, "model.safetensors": b"PK\x03\x04junk"}),
         "model.safetensors is not a safetensors file"),
    Case("sharded weights with a shard missing",
         model({**without("model.safetensors"), "model-1.safetensors": safetensors(),
                            "model.safetensors.index.json": json.dumps(
                                {"weight_map": {"t0": "model-1.safetensors", "t1": "model-2.safetensors"}})}),
         "shard 'model-2.safetensors' named by model.safetensors.index.json is missing"),
    Case("model folder without a tokenizer", model(without("vocab.txt")),
         "model folder without a tokenizer: expected tokenizer.json (or vocab.txt for bert)"),
    Case("model folder named but absent", files_and({}, lambda e: e.__setitem__("models", ["./no-model"])),
         "./no-model: model folder not found"),
]
