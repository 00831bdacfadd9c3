"""The official SQuAD v1.1 definitions on hand-checked predictions."""

import math

import pytest

from trainables.tasks.squad_metric import (exact_match_score, f1_score, normalize_answer,
                                           squad_scores)


@pytest.mark.parametrize("text, expected", [
    ("The Denver Broncos!", "denver broncos"),
    ("  an  apple,  a day ", "apple day"),
    ("theater another", "theater another"),   # articles only as whole words
    ("U.S.", "us"),
    ("«Paris»", "«paris»"),                   # only ASCII punctuation is removed
    ("Ёлка", "ёлка"),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_punctuation_and_articles():
    assert exact_match_score("Denver Broncos", "the Denver Broncos.") == 1.0
    assert exact_match_score("Denver", "Denver Broncos") == 0.0
    assert exact_match_score("the", "a") == 1.0   # both normalise to ""


def test_f1_is_token_overlap_after_normalisation():
    assert f1_score("Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)   # P 2/3, R 1
    assert f1_score("the cat cat", "cat") == pytest.approx(2 / 3)                   # P 1/2, R 1
    assert f1_score("cats", "cat") == 0.0
    assert f1_score("", "cat") == 0.0
    assert f1_score("the", "a") == 0.0   # the official script: no common token, F1 0 even if EM 1


def test_max_over_gold_answers_and_dataset_average():
    gold = {"q1": ["Carolina Panthers", "Denver Broncos"],
            "q2": ["1920s", "the 1920s"],
            "q3": ["Levi's Stadium"],
            "q4": ["Santa Clara"]}
    predictions = {"q1": "Broncos", "q2": "The 1920s.", "q3": "Levi's Stadium in California"}
    scores = squad_scores(gold, predictions)
    # q1: EM 0, F1 2/3 (P 1, R 1/2); q2: EM 1, F1 1; q3: EM 0, F1 2*(2/4*1)/(2/4+1) = 2/3;
    # q4: no prediction, 0.
    assert scores["exact_match"] == pytest.approx(1 / 4)
    assert scores["f1"] == pytest.approx((2 / 3 + 1 + 2 / 3 + 0) / 4)
    assert set(scores) == {"exact_match", "f1"}


def test_no_gold_answer_is_an_error_and_no_question_is_nan():
    with pytest.raises(ValueError):
        squad_scores({"q": []}, {"q": "x"})
    assert math.isnan(squad_scores({}, {})["f1"])
