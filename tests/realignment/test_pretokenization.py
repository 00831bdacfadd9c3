"""Pre-tokenization: the regex rule, and the segmenters of zh / ja / th."""

import re

import pytest

from trainables.realignment import pretokenization
from trainables.realignment.pretokenization import contains_word, pretokenize, segmenter_name


def test_regex_rule_for_spaced_languages():
    assert pretokenize("L'homme est là.", "fr") == ["L", "'", "homme", "est", "là", "."]
    assert segmenter_name("fr") == "regex"


def test_chinese_with_jieba_matches_the_gold_set_segmentation():
    # first sentence of the bundled zh-en gold set, which is segmented by hand
    words = pretokenize("科学家一直猜想土卫六上存在着由液态甲烷构成的海洋。", "zh")
    assert words == "科学家 一直 猜想 土卫六 上 存在 着 由 液态 甲烷 构成 的 海洋 。".split()
    assert pretokenize("我爱北京天安门", "zh") == ["我", "爱", "北京", "天安门"]
    assert re.fullmatch(r"jieba-\d+\.\d+(\.\d+)?", segmenter_name("zh"))


def test_japanese_with_sudachi_core_mode_a():
    assert pretokenize("東京都に住んでいます。", "ja") == ["東京", "都", "に", "住ん", "で", "い", "ます", "。"]
    assert pretokenize("足利義満は室町幕府の第3代征夷大将軍である。", "ja")[:6] == [
        "足利", "義満", "は", "室町", "幕府", "の"]
    assert re.fullmatch(r"sudachipy-[\w.]+/core-[\w.]+/A", segmenter_name("ja"))


def test_thai_with_pythainlp_newmm():
    assert pretokenize("ผมรักภาษาไทย", "th") == ["ผม", "รัก", "ภาษาไทย"]
    assert re.fullmatch(r"pythainlp-[\w.]+/newmm", segmenter_name("th"))


@pytest.mark.parametrize("language", ["zh", "ja", "th"])
def test_segmenters_drop_whitespace_tokens(language):
    words = pretokenize("  OK 123　ok\t", language)
    assert words and all(word.strip() == word and word for word in words)
    assert pretokenize("   ", language) == []
    assert pretokenize("", language) == []


def test_segmenters_load_once():
    pretokenize("我爱北京", "zh")
    first = pretokenization.segmenter("jieba")
    pretokenize("北京", "zh")
    assert pretokenization.segmenter("jieba") is first


def test_unknown_segmenter_is_a_spec_error():
    from trainables.errors import SpecError

    with pytest.raises(SpecError, match="unknown segmenter"):
        pretokenization.segmenter("kytea")


def test_contains_word_tells_punctuation_only_sides():
    assert contains_word(["oh", "!"])
    assert contains_word(["3"])
    assert contains_word(["ภาษาไทย"])
    assert not contains_word([".", "!", "«", "»"])
    assert not contains_word([])
