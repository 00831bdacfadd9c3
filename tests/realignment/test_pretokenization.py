"""Pre-tokenization: the reference's rules (default), the unicode option, the segmenters of zh / ja / th."""

import re

import pytest

from trainables.errors import SpecError
from trainables.realignment import pretokenization
from trainables.realignment.pretokenization import contains_word, pretokenize, segmenter_name


def test_regex_rule_for_spaced_languages():
    assert pretokenize("L'homme est là.", "fr") == ["L", "'", "homme", "est", "là", "."]
    assert segmenter_name("fr") == "regex"


def test_reference_regex_keeps_punctuation_runs_together():
    # \w+|[^\w\s]+ : a run of punctuation is one word; the unicode rule splits it
    assert pretokenize('is "Muiriel".', "en") == ["is", '"', "Muiriel", '".']
    assert pretokenize("Wait...!", "en", "unicode") == ["Wait", ".", ".", ".", "!"]


def test_reference_regex_splits_combining_marks_and_does_not_normalise():
    # Python's \w leaves out combining marks: the reference cuts Devanagari words
    assert pretokenize("कमरा है।", "hi") == ["कमर", "ा", "ह", "ै।"]
    assert pretokenize("कमरा है।", "hi", "unicode") == ["कमरा", "है", "।"]
    decomposed = "e\u0301te\u0301"           # "été" with combining acute accents
    assert pretokenize(decomposed, "fr") == ["e", "\u0301", "te", "\u0301"]
    assert pretokenize(decomposed, "fr", "unicode") == ["\u00e9t\u00e9"]


def test_reference_chinese_cuts_at_full_stops_and_puts_them_back():
    assert pretokenize("  你好。。世界  ", "zh") == ["你好", "。", "。", "世界"]
    assert pretokenize("他说：“我爱北京。”然后走了。", "zh") == [
        "他", "说", "：", "“", "我", "爱", "北京", "。", "”", "然后", "走", "了", "。"]
    assert pretokenize("。", "zh") == ["。"]


def test_unknown_pretokenizer_is_a_spec_error():
    with pytest.raises(SpecError, match="unknown pretokenizer 'nfc'"):
        pretokenize("a", "fr", "nfc")
    with pytest.raises(SpecError, match="unknown pretokenizer"):
        pretokenize("a", "zh", "Reference")


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


@pytest.mark.parametrize("pretokenizer", ["reference", "unicode"])
@pytest.mark.parametrize("language", ["zh", "ja", "th", "fr"])
def test_no_word_holds_whitespace(language, pretokenizer):
    # ideographic space and tab included: whitespace tokens vanish, as in the reference's files
    assert pretokenize("  OK 123　ok\t", language, pretokenizer) == ["OK", "123", "ok"]
    assert pretokenize("   ", language, pretokenizer) == []
    assert pretokenize("", language, pretokenizer) == []


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


def test_the_pretokenizer_is_part_of_the_alignment_cache_key(tmp_path):
    import json

    from trainables.bundled import bundled_path
    from trainables.realignment.aligners import AlignmentRequest
    from trainables.realignment.alignment_cache import alignment_key_parts, cached_alignment
    from trainables.realignment.corpus import tokenized_pairs

    sentences = [("The room is clean.", "कमरा साफ़ है।")]
    dictionary = bundled_path("dictionaries/muse/en-hi.first3000.txt")
    outcomes = {}
    for name in ("reference", "unicode"):
        request = AlignmentRequest("hi", tokenized_pairs("hi", sentences, name), dictionary_path=dictionary,
                                   pretokenizer=name)
        assert alignment_key_parts("dico", request, "corpus")["pretokenizer"] == name
        outcomes[name] = cached_alignment("dico", request, "corpus", root=tmp_path)
        meta = json.loads((tmp_path / "alignments" / outcomes[name].key / "meta.json").read_text())
        assert meta["pretokenizer"] == outcomes[name].pretokenizer == name
    # one corpus fingerprint ("corpus") for both: only the pre-tokenizer tells the keys apart
    assert outcomes["reference"].key != outcomes["unicode"].key
    with pytest.raises(SpecError, match="unknown pretokenizer"):
        alignment_key_parts("dico", AlignmentRequest("hi", [], pretokenizer="nfc"), "corpus")


def test_an_experiment_names_its_pretokenizer():
    import copy

    from orchestrator.experiment import experiment_from_dict
    from trial_fixtures import small_pos_experiment

    raw = small_pos_experiment(strategies=["full"])
    unicode = copy.deepcopy(raw)
    unicode["realignment"]["pretokenizer"] = "unicode"
    assert all(spec.realignment["pretokenizer"] == "unicode"
               for spec in experiment_from_dict(unicode).trials if spec.realigns)
    raw["realignment"]["pretokenizer"] = "unicod"
    with pytest.raises(SpecError, match="realignment.pretokenizer must be one of reference, unicode, got 'unicod'; did you mean unicode"):
        experiment_from_dict(raw)
