"""Gold alignment sets, precision / recall / AER, and the align-eval command."""

import argparse

import pytest

from trainables.errors import DataError, SpecError
from orchestrator.align_eval_command import add_align_eval_arguments, run_align_eval
from trainables.realignment.alignment_eval import (
    alignment_scores, bundled_gold_sets, evaluate_aligner, evaluation_table, load_gold_sets, read_awesome_gold,
)


@pytest.fixture(scope="module")
def gold():
    return bundled_gold_sets()


def test_bundled_gold_sets_are_read_english_side_first(gold):
    assert sorted(gold) == ["en-de", "en-fr", "ja-en", "ro-en", "zh-en"]
    assert {name: gold_set.language for name, gold_set in gold.items()} == {
        "en-de": "de", "en-fr": "fr", "ja-en": "ja", "ro-en": "ro", "zh-en": "zh"}
    assert [len(gold[name].tokenized) for name in ("en-fr", "ro-en", "ja-en", "zh-en", "en-de")] == [
        100, 100, 100, 100, 5]
    for gold_set in gold.values():
        for (src, tgt), sure, possible in zip(gold_set.tokenized, gold_set.sure, gold_set.possible):
            assert sure <= possible
            assert all(i < len(src) and j < len(tgt) for i, j in possible)


def test_awesome_gold_is_one_based_with_possible_links(gold):
    en_fr = gold["en-fr"]
    # "oh , oh ! ||| oh , oh !" with gold "2-2 4-4 1-1 3-3"
    assert en_fr.tokenized[2] == (("oh", ",", "oh", "!"), ("oh", ",", "oh", "!"))
    assert en_fr.sure[2] == {(0, 0), (1, 1), (2, 2), (3, 3)}
    # "order , please . ||| a le ordre ." : sure order-ordre and .-., the rest possible
    assert en_fr.sure[14] == {(0, 2), (3, 3)}
    assert (1, 1) in en_fr.possible[14] - en_fr.sure[14]


def test_ro_en_is_turned_english_first(gold):
    # "ajunge ! ||| that 's enough !" with gold "2-4 1-3" (Romanian first)
    ro_en = gold["ro-en"]
    assert ro_en.tokenized[0] == (("that", "'s", "enough", "!"), ("ajunge", "!"))
    assert ro_en.sure[0] == {(2, 0), (3, 1)}


def test_simalign_sample_is_zero_based(gold):
    en_de = gold["en-de"]
    # "But this is not what happens ." / "Das stimmt nicht !" : 1-0 ... 6-3
    assert en_de.tokenized[1][1] == ("Das", "stimmt", "nicht", "!")
    assert (6, 3) in en_de.sure[1] and (0, 0) not in en_de.possible[1]
    assert (19, 25) in en_de.possible[2] - en_de.sure[2]


def test_scores_by_hand():
    sure = [frozenset({(0, 0), (1, 1)})]
    possible = [frozenset({(0, 0), (1, 1), (2, 1)})]
    # A = {(0,0), (2,1), (2,2)}: |A|=3, |A∩S|=1, |A∩P|=2, |S|=2
    scores = alignment_scores([[(0, 0), (2, 1), (2, 2)]], sure, possible)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(1 / 2)
    assert scores["aer"] == pytest.approx(1 - 3 / 5)
    perfect = alignment_scores([[(0, 0), (1, 1)]], sure, possible)
    assert perfect["aer"] == 0 and perfect["precision"] == 1 and perfect["recall"] == 1
    assert alignment_scores([[]], sure, possible) == {"precision": 0.0, "recall": 0.0, "aer": 1.0,
                                                      "links": 0, "sure": 2}


def test_wpt_gold_lines_and_bad_files(tmp_path):
    text = tmp_path / "enfr.src-tgt"
    text.write_text("a b ||| x y\nc ||| z\n", encoding="utf-8")
    wpt = tmp_path / "enfr.gold"
    wpt.write_text("1 1 1 S\n1 2 2 P\n2 1 1\n", encoding="utf-8")
    gold_set = read_awesome_gold(text, wpt, "en", "fr")
    assert gold_set.sure == [{(0, 0)}, {(0, 0)}]
    assert gold_set.possible == [{(0, 0), (1, 1)}, {(0, 0)}]
    assert [g.name for g in load_gold_sets([str(tmp_path)])] == ["en-fr"]
    wpt.write_text("1-1\n2-3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"enfr.gold:2: link 1-2 \(0-based\) outside"):
        read_awesome_gold(text, wpt, "en", "fr")
    wpt.write_text("1-1\n0-1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"enfr.gold:2: .*below 1"):
        read_awesome_gold(text, wpt, "en", "fr")
    text.write_text("a b x y\nc ||| z\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"enfr.src-tgt:1: expected 'source \|\|\| target'"):
        read_awesome_gold(text, wpt, "en", "fr")


def test_unknown_gold_name_suggests():
    with pytest.raises(SpecError, match="did you mean en-fr"):
        load_gold_sets(["en-fx"])


def test_evaluate_dico_and_table(gold):
    from trainables.realignment.alignment_eval import bundled_dictionary

    result = evaluate_aligner("dico", gold["en-de"], dictionary_path=bundled_dictionary("de"))
    assert result["pair"] == "en-de" and result["links"] > 0 and result["precision"] > 0.5
    table = evaluation_table([result, {"aligner": "dico", "pair": "ro-en", "note": "no dictionary"}])
    assert "en-de" in table and "no dictionary" in table and "AER" in table.splitlines()[0]


def test_align_eval_command(capsys):
    parser = argparse.ArgumentParser()
    add_align_eval_arguments(parser)
    args = parser.parse_args(["--aligner", "eflomal", "dico", "--gold", "en-de",
                              "--symmetrisation", "intersection"])
    assert run_align_eval(args) == 0
    out = capsys.readouterr().out
    assert "eflomal/intersection" in out and "dico" in out and "en-de" in out


def test_align_eval_simalign_with_the_tiny_model(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNFREEZE_CACHE", str(tmp_path))
    parser = argparse.ArgumentParser()
    add_align_eval_arguments(parser)
    assert run_align_eval(parser.parse_args(["--aligner", "simalign", "--gold", "en-de", "--layer", "2"])) == 0
    out = capsys.readouterr().out
    assert "simalign/layer2 (tiny-mbert)" in out and "real encoder" in out
