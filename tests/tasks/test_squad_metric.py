"""The official SQuAD v1.1 definitions and the paper's, on hand-checked predictions."""

import math

import pytest

from trainables.tasks.registry import get_task
from trainables.tasks.squad_metric import (exact_match_score, f1_score, normalize_answer,
                                           paper_exact_match_score, paper_f1_score, paper_scores,
                                           qa_metrics, squad_scores)


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


# ---------------------------------------------------------------- the paper's definitions

def test_paper_f1_counts_a_repeated_word_once():
    # tokens cat cat / cat cat: official multiset overlap 2 -> P = R = 1, F1 1;
    # set overlap {cat} = 1 -> P = R = 1/2, P + R = 1, F1 2 * 1/4 / 1 = 1/2
    assert f1_score("the cat cat", "cat cat") == 1.0
    assert paper_f1_score("the cat cat", "cat cat") == 0.5


def test_paper_f1_divides_by_max_of_one_and_p_plus_r():
    # common {x}: P 1/4, R 1/2, P + R = 3/4 < 1: 2PR / 1 = 1/4 (official: 2PR / (P + R) = 1/3)
    assert paper_f1_score("x y z w", "x q") == pytest.approx(0.25)
    assert f1_score("x y z w", "x q") == pytest.approx(1 / 3)
    # P + R >= 1: the usual harmonic mean. P 1/2, R 1: 2 * 1/2 / 1.5 = 2/3
    assert paper_f1_score("Denver Broncos", "Broncos") == pytest.approx(2 / 3)


def test_paper_f1_when_a_side_normalises_to_nothing():
    assert paper_f1_score("the", "a") == 1.0   # both empty: agree
    assert f1_score("the", "a") == 0.0
    assert paper_f1_score("", "cat") == 0.0 and paper_f1_score("cat", "!") == 0.0


def test_paper_exact_match_is_raw_except_on_english():
    assert paper_exact_match_score("the Broncos.", "Broncos", normalised=False) == 0.0
    assert paper_exact_match_score("the Broncos.", "Broncos", normalised=True) == 1.0
    assert paper_exact_match_score(" Broncos", "Broncos", normalised=False) == 0.0
    assert paper_exact_match_score("Broncos", "Broncos", normalised=False) == 1.0


def test_paper_scores_use_the_first_gold_answer_only():
    gold = {"q1": ["Denver Broncos", "Broncos"],   # the second would give F1 1 and EM 1
            "q2": ["cat cat", "cat"],
            "q3": ["Santa Clara"]}
    predictions = {"q1": "Broncos", "q2": "cat cat"}
    # q1: F1 2/3, EM 0; q2: F1 1/2 (set overlap), EM 1 (raw equality); q3: no prediction, 0
    target = paper_scores(gold, predictions, english=False)
    assert target == pytest.approx({"f1_paper": (2 / 3 + 0.5) / 3, "exact_match_paper": 1 / 3})
    # official: q1 F1 1 and EM 1 (second answer), q2 F1 1 and EM 1
    assert squad_scores(gold, predictions) == pytest.approx({"exact_match": 2 / 3, "f1": 2 / 3})


def test_english_exact_match_is_normalised():
    gold = {"a": ["The Eiffel Tower"], "b": ["1889"]}
    predictions = {"a": "Eiffel Tower.", "b": " 1889"}
    assert paper_scores(gold, predictions, english=False)["exact_match_paper"] == 0.0
    assert paper_scores(gold, predictions, english=True)["exact_match_paper"] == 1.0


def test_qa_metrics_are_the_registry_metrics_in_order():
    scores = qa_metrics({"q": ["Paris"]}, {"q": "Paris"}, english=False)
    assert list(scores) == list(get_task("qa").metrics) and set(scores.values()) == {1.0}
    assert all(math.isnan(v) for v in qa_metrics({}, {}, english=False).values())
