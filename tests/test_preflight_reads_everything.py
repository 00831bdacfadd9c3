"""Everything a trial reads is opened and checked before the first trial (issue 14, part 2).

Pharaoh alignment files against the corpus each trial pairs them with
(line counts, links inside the words under the trial's pre-tokenizer,
every line parsed), and local model folders (config, model type,
weights, tokenizer), through ``alignfreeze run FILE --dry-run`` and the
checks themselves.
"""

from __future__ import annotations

import copy
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from orchestrator import preflight
from orchestrator.cli import main
from trainables.errors import DataError
from trainables.model_folders import check_model_folder
from trainables.models import SUPPORTED_MODEL_TYPES, model_num_blocks
from trainables.realignment.corpus import PHARAOH_CHECKED_PAIRS, check_alignment_file
from trainables.realignment.word_pairs import parse_pharaoh_line
from trainables.tiny_models import tiny_model_dir

DEMO = Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"
PREFIX = "alignfreeze: error: "

ENGLISH = ["Hello world .", "I see a cat .", "Good night"]
FRENCH = ["Bonjour monde .", "Je vois un chat .", "Bonne nuit"]
GOOD_LINKS = ["0-0 1-1", "1-1 3-3", "0-0"]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def pharaoh_experiment(directory: Path, links: list[str], english=ENGLISH, french=FRENCH,
                       **realignment) -> Path:
    """The demo realigning French only, with the pharaoh aligner on a small corpus."""
    write_lines(directory / "en.txt", english)
    write_lines(directory / "fr.txt", french)
    write_lines(directory / "fr.align", links)
    experiment = copy.deepcopy(yaml.safe_load(DEMO.read_text(encoding="utf-8")))
    experiment.update(aligners=["pharaoh"], strategies=["baseline", "full"], seeds=[1])
    settings = experiment["realignment"]
    settings.pop("dictionaries")
    settings.update(languages=["fr"], parallel={"fr": {"source": "en.txt", "target": "fr.txt"}},
                    alignments={"fr": "fr.align"}, **realignment)
    path = directory / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def dry_run(path: Path, capsys) -> tuple[int, str]:
    code = main(["run", str(path), "--dry-run"])
    return code, capsys.readouterr().err


def refused(path: Path, capsys) -> str:
    code, err = dry_run(path, capsys)
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(PREFIX), err
    return lines[0][len(PREFIX):]


# ------------------------------------------------------------------ pharaoh

def test_a_pharaoh_file_that_matches_its_corpus_passes(tmp_path, capsys):
    code, err = dry_run(pharaoh_experiment(tmp_path, GOOD_LINKS), capsys)
    assert code == 0, err
    # the data plan states the bound of the link check
    assert f"  {tmp_path / 'fr.align'}: alignments (fr; links checked on the first 20,000 pairs)" in err


def test_a_pharaoh_file_shorter_than_its_corpus(tmp_path, capsys):
    message = refused(pharaoh_experiment(tmp_path, GOOD_LINKS[:2]), capsys)
    assert message == (f"{tmp_path / 'fr.align'}:3: 2 alignment line(s) for the 3 sentence pairs of "
                       f"{tmp_path / 'fr.txt'}: pair 3 onwards has none")


def test_a_pharaoh_file_longer_than_its_corpus(tmp_path, capsys):
    message = refused(pharaoh_experiment(tmp_path, GOOD_LINKS + ["0-0", "1-1"]), capsys)
    assert message == (f"{tmp_path / 'fr.align'}:4: 5 alignment lines for the 3 sentence pairs of "
                       f"{tmp_path / 'fr.txt'}: line 4 onwards has no sentence pair")


def test_a_pharaoh_file_for_the_pairs_a_trial_reads_is_accepted(tmp_path, capsys):
    # made for the first max_pairs pairs (``align --max-pairs``): the trial reads no more
    code, err = dry_run(pharaoh_experiment(tmp_path, GOOD_LINKS[:2], max_pairs=2), capsys)
    assert code == 0, err


def test_a_pharaoh_file_shorter_than_max_pairs(tmp_path, capsys):
    french = FRENCH + ["Merci"] * 3
    message = refused(pharaoh_experiment(tmp_path, GOOD_LINKS[:2], english=ENGLISH + ["Thanks"] * 3,
                                         french=french, max_pairs=4), capsys)
    assert message.endswith("2 alignment line(s) for the first 4 sentence pairs (realignment.max_pairs) of "
                            f"{tmp_path / 'fr.txt'}: pair 3 onwards has none")


def test_a_link_outside_its_sentence_pair(tmp_path, capsys):
    message = refused(pharaoh_experiment(tmp_path, ["0-0 1-1", "1-1 4-5", "0-0"]), capsys)
    assert message == (f"{tmp_path / 'fr.align'}:2: link 4-5 outside sentence pair 2, of 5x5 words "
                       f"(pretokenizer reference)")


def test_links_are_checked_on_the_words_of_the_trials_pretokenizer(tmp_path):
    # "कमरा": the reference rule splits the vowel sign off (2 words), the unicode rule keeps one word
    source = {"source": str(write_lines(tmp_path / "en.txt", ["room ."])),
              "target": str(write_lines(tmp_path / "hi.txt", ["कमरा ."]))}
    links = write_lines(tmp_path / "hi.align", ["0-2"])
    check_alignment_file("hi", source, links, pretokenizer="reference")
    with pytest.raises(DataError, match=r"hi.align:1: link 0-2 outside sentence pair 1, of 2x2 words "
                                        r"\(pretokenizer unicode\)$"):
        check_alignment_file("hi", source, links, pretokenizer="unicode")


def test_pharaoh_lines_pair_with_the_sentence_pairs_of_a_tsv(tmp_path):
    # a TSV's blank lines are no sentence pair: alignment line 2 goes with "I see a cat ."
    tsv = write_lines(tmp_path / "fr.tsv", ["Hello world .\tBonjour monde .", "",
                                            "I see a cat .\tJe vois un chat ."])
    check_alignment_file("fr", str(tsv), write_lines(tmp_path / "ok.align", ["0-0", "4-4"]))
    with pytest.raises(DataError, match=r"bad.align:2: link 5-0 outside sentence pair 2"):
        check_alignment_file("fr", str(tsv), write_lines(tmp_path / "bad.align", ["0-0", "5-0"]))


@pytest.mark.parametrize("token", ["0-x", "²-1", "perhaps", "0--1", "1-2-3", "-1-0"])
def test_a_garbage_token_in_a_pharaoh_file(tmp_path, capsys, token):
    message = refused(pharaoh_experiment(tmp_path, ["0-0", f"1-1 {token}", "0-0"]), capsys)
    assert message.startswith(f"{tmp_path / 'fr.align'}:2: bad alignment link {token!r} (expected i-j")


def test_possible_links_are_well_formed_or_refused():
    assert parse_pharaoh_line("0-0 2p1") == [(0, 0)]
    with pytest.raises(DataError, match="bad alignment link '2pp1'"):
        parse_pharaoh_line("0-0 2pp1")


def test_links_are_checked_on_a_stated_prefix_and_every_line_is_parsed(tmp_path):
    english = write_lines(tmp_path / "en.txt", ["a b"] * 5)
    french = write_lines(tmp_path / "fr.txt", ["x y"] * 5)
    source = {"source": str(english), "target": str(french)}
    beyond = write_lines(tmp_path / "beyond.align", ["0-0"] * 4 + ["7-7"])
    check_alignment_file("fr", source, beyond, checked_pairs=4)     # link 7-7 is past the prefix
    with pytest.raises(DataError, match=r"beyond.align:5: link 7-7"):
        check_alignment_file("fr", source, beyond, checked_pairs=5)
    garbage = write_lines(tmp_path / "garbage.align", ["0-0"] * 4 + ["7-"])
    with pytest.raises(DataError, match=r"garbage.align:5: bad alignment link '7-'"):
        check_alignment_file("fr", source, garbage, checked_pairs=1)
    assert PHARAOH_CHECKED_PAIRS == 20_000 and "20,000" in preflight.__doc__


def test_a_pharaoh_file_that_is_not_utf8(tmp_path, capsys):
    path = pharaoh_experiment(tmp_path, GOOD_LINKS)
    (tmp_path / "fr.align").write_bytes("0-0\n1-1 é\n0-0\n".encode("latin-1"))
    assert refused(path, capsys).startswith(f"{tmp_path / 'fr.align'}: not UTF-8 text")


# ------------------------------------------------------------- model folders

def model_folder(tmp_path: Path, name: str = "model", source: str = "tiny-mbert") -> Path:
    """A copy of a tiny model's folder (its files linked, not copied)."""
    folder = tmp_path / name
    folder.mkdir()
    for path in tiny_model_dir(source).iterdir():
        if path.is_file():
            (folder / path.name).symlink_to(path)
    return folder


def replace(path: Path, content: bytes | str) -> None:
    path.unlink()
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)


def refusal(folder: Path) -> str:
    with pytest.raises(DataError) as caught:
        model_num_blocks(str(folder))
    message = str(caught.value)
    assert message.startswith(f"{folder}: ") and "\n" not in message, message
    return message[len(f"{folder}: "):]


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return len(encoded).to_bytes(8, "little") + encoded + data


def test_a_sound_model_folder_passes(tmp_path):
    for source in ("tiny-mbert", "tiny-distilmbert", "tiny-xlmr"):
        folder = model_folder(tmp_path, source, source)
        assert model_num_blocks(str(folder)) == model_num_blocks(source)


def test_a_model_folder_without_weights(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "model.safetensors").unlink()
    assert refusal(folder) == ("model folder without weights: expected model.safetensors or pytorch_model.bin "
                               "(or a sharded index, model.safetensors.index.json)")


def test_a_model_folder_without_config(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "config.json").unlink()
    assert refusal(folder) == "model folder without config.json"


@pytest.mark.parametrize("config, expected", [
    ({"model_type": "gpt2"}, "config.json has model_type 'gpt2'; supported: " + ", ".join(SUPPORTED_MODEL_TYPES)),
    ({"hidden_size": 4}, "config.json has no model_type; supported: "),
    ([1, 2], "config.json is not a JSON object"),
    ("{not json", "config.json is not valid JSON (line 1: "),
])
def test_a_config_the_project_cannot_use(tmp_path, config, expected):
    folder = model_folder(tmp_path)
    replace(folder / "config.json", config if isinstance(config, str) else json.dumps(config))
    assert refusal(folder).startswith(expected)


def test_a_truncated_safetensors_file(tmp_path):
    folder = model_folder(tmp_path)
    whole = (folder / "model.safetensors").read_bytes()
    replace(folder / "model.safetensors", whole[:len(whole) // 2])
    assert refusal(folder) == (f"model.safetensors is truncated: {len(whole) // 2} bytes, its header describes "
                               f"{len(whole)}")


@pytest.mark.parametrize("content, expected", [
    (b"", "model.safetensors is empty"),
    (b"\x01\x02", "model.safetensors is not a safetensors file, or is truncated (no complete header)"),
    ((10**12).to_bytes(8, "little") + b"{}", "model.safetensors is not a safetensors file, or is truncated"),
    (b"\x05\x00\x00\x00\x00\x00\x00\x00[1,2]", "model.safetensors is not a safetensors file (its header is not"),
])
def test_a_safetensors_file_that_is_not_one(tmp_path, content, expected):
    folder = model_folder(tmp_path)
    replace(folder / "model.safetensors", content)
    assert refusal(folder).startswith(expected)


def test_sharded_weights_need_every_shard(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "model.safetensors").unlink()
    shard = safetensors_bytes({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    (folder / "model-00001-of-00002.safetensors").write_bytes(shard)
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    assert refusal(folder) == ("shard 'model-00002-of-00002.safetensors' named by model.safetensors.index.json "
                               "is missing")
    (folder / "model-00002-of-00002.safetensors").write_bytes(shard)
    check_model_folder(str(folder), str(folder))     # both present and sound


def test_a_truncated_zip_checkpoint(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "model.safetensors").unlink()
    with zipfile.ZipFile(folder / "pytorch_model.bin", "w") as archive:
        archive.writestr("archive/data.pkl", b"\0" * 1000)
    check_model_folder(str(folder), str(folder))
    whole = (folder / "pytorch_model.bin").read_bytes()
    replace(folder / "pytorch_model.bin", whole[:600])
    assert refusal(folder) == "pytorch_model.bin is truncated or damaged (its zip directory cannot be read)"


def test_a_model_folder_without_a_tokenizer(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "tokenizer.json").unlink()
    assert refusal(folder) == "model folder without a tokenizer: expected tokenizer.json (or vocab.txt for bert)"
    # the vocabulary transformers builds a fast BERT tokenizer from does as well
    shutil.copy(Path(__file__).resolve().parents[1] / "trainables" / "bundled_data" / "vocab" /
                "bert-base-multilingual-cased" / "vocab.txt", folder / "vocab.txt")
    check_model_folder(str(folder), str(folder))


def test_a_damaged_tokenizer_file(tmp_path):
    folder = model_folder(tmp_path)
    replace(folder / "tokenizer.json", '{"version": "1.0", "model": ')
    assert refusal(folder).startswith("tokenizer.json cannot be read: ")
    folder = model_folder(tmp_path, "other")
    replace(folder / "tokenizer_config.json", "[")
    assert refusal(folder).startswith("tokenizer_config.json is not valid JSON")


def test_a_model_path_that_is_not_a_folder(tmp_path):
    with pytest.raises(DataError, match=r"^\./no-such-model: model folder not found$"):
        model_num_blocks("./no-such-model")
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    with pytest.raises(DataError, match="a model must be a folder"):
        model_num_blocks(str(file))


def test_hub_ids_and_tiny_models_are_not_checked_as_folders(monkeypatch):
    from trainables import model_folders

    monkeypatch.setattr(model_folders, "_check_weights", lambda folder: pytest.fail("a folder was checked"))
    assert model_num_blocks("bert-base-multilingual-cased") == 12      # offline: the known paper model
    assert model_num_blocks("tiny-mbert") == 4


def test_a_broken_model_folder_fails_the_dry_run(tmp_path, capsys):
    folder = model_folder(tmp_path)
    (folder / "model.safetensors").unlink()
    experiment = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    experiment["models"] = [str(folder)]
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment), encoding="utf-8")
    assert refused(path, capsys).startswith(f"{folder}: model folder without weights")


# ----------------------------------------------------- other files a trial reads

def test_a_missing_validation_file(tmp_path, capsys):
    experiment = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    experiment["data"]["pos"]["validation"] = {"fr": "dev-fr.conllu"}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment), encoding="utf-8")
    assert refused(path, capsys) == "dev-fr.conllu: file or directory not found"     # as the file names it


def test_a_malformed_validation_file(tmp_path, capsys):
    experiment = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    (tmp_path / "dev-fr.conllu").write_text("1\tBonjour\tbonjour\tINTJ\n", encoding="utf-8")
    experiment["data"]["pos"]["validation"] = {"fr": "dev-fr.conllu"}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment), encoding="utf-8")
    assert refused(path, capsys).startswith(f"{tmp_path / 'dev-fr.conllu'}:1: ")


def test_a_sentencepiece_vocabulary_needs_its_package(tmp_path, monkeypatch):
    import importlib.util

    folder = model_folder(tmp_path, "xlmr", "tiny-xlmr")
    (folder / "tokenizer.json").unlink()
    (folder / "sentencepiece.bpe.model").write_bytes(b"\n\x05<unk>")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "sentencepiece" else real(name, *args))
    assert refusal(folder) == ("model folder without tokenizer.json: its sentencepiece.bpe.model needs the "
                               "'sentencepiece' package, which is not installed")
