"""Every language list of the project, written once.

The paper's target languages per task and its realignment languages
(OPUS-100 en-xx pairs). Everything else (task registry, presets, analysis,
validation) reads them from here.
"""

from __future__ import annotations

# PoS (UD) and NER (WikiANN): the paper's 34 target languages.
PAPER_POS_LANGUAGES: tuple[str, ...] = (
    "af", "ar", "bg", "ca", "cs", "da", "de", "el", "es", "fa", "fi", "fr",
    "he", "hi", "hu", "it", "ja", "ko", "lt", "lv", "no", "pl", "pt", "ro",
    "ru", "sk", "sl", "sv", "ta", "th", "tr", "uk", "vi", "zh",
)
PAPER_NER_LANGUAGES: tuple[str, ...] = PAPER_POS_LANGUAGES
# NLI (XNLI): 12 target languages.
PAPER_NLI_LANGUAGES: tuple[str, ...] = (
    "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "th", "tr", "vi", "zh",
)
# QA (XQuAD): 11 target languages.
PAPER_QA_LANGUAGES: tuple[str, ...] = (
    "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh",
)
# Realignment (OPUS-100 en-xx): the same 34 languages for every task.
PAPER_REALIGNMENT_LANGUAGES: tuple[str, ...] = PAPER_POS_LANGUAGES

SOURCE_LANGUAGE = "en"

# The UD treebank of each language in the paper's PoS experiments (the
# reference's choice, after Wu and Dredze): training on en_ewt, evaluation
# on each target's treebank. ``hub:<dataset id>`` PoS sources pick the
# config from here.
PAPER_UD_TREEBANKS: dict[str, str] = {
    "en": "en_ewt", "af": "af_afribooms", "ar": "ar_padt", "bg": "bg_btb", "ca": "ca_ancora",
    "cs": "cs_pdt", "da": "da_ddt", "de": "de_gsd", "el": "el_gdt", "es": "es_gsd",
    "fa": "fa_perdt", "fi": "fi_pud", "fr": "fr_gsd", "he": "he_htb", "hi": "hi_hdtb",
    "hu": "hu_szeged", "it": "it_isdt", "ja": "ja_gsd", "ko": "ko_gsd", "lv": "lv_lvtb",
    "lt": "lt_alksnis", "no": "no_bokmaal", "pl": "pl_pdb", "pt": "pt_gsd", "ro": "ro_rrt",
    "ru": "ru_gsd", "sk": "sk_snk", "sl": "sl_ssj", "sv": "sv_pud", "ta": "ta_ttb",
    "th": "th_pud", "tr": "tr_pud", "uk": "uk_iu", "vi": "vi_vtb", "zh": "zh_gsd",
}

# Validation (dev) data where the paper's test data has none: PUD treebanks are
# test-only, so these languages validate on their main treebank's dev set (th has
# no other treebank); XQuAD is test-only, so QA validates on MLQA's dev data,
# which covers these languages.
VALIDATION_UD_TREEBANKS: dict[str, str] = {"fi": "fi_tdt", "sv": "sv_talbanken", "tr": "tr_imst"}
MLQA_LANGUAGES: tuple[str, ...] = ("en", "ar", "de", "es", "hi", "vi", "zh")

# Every language code the project accepts anywhere (targets, realignment,
# data sources). A code outside this set is a typo until proven otherwise.
# Extend it here when a new language is needed.
KNOWN_LANGUAGES: frozenset[str] = frozenset(
    PAPER_POS_LANGUAGES + PAPER_NLI_LANGUAGES + PAPER_QA_LANGUAGES + (
        SOURCE_LANGUAGE,
        # XNLI / XTREME / OPUS extras that circulate in the same experiments
        "sw", "ur", "nl", "et", "eu", "id", "ka", "kk", "ml", "mr", "my",
        "tl", "te", "yo", "jv", "bn", "ms", "sq", "hr", "sr", "is", "ga",
        "cy", "gl", "hy", "az", "be", "mk", "mn", "ne", "pa", "si", "gu",
        "kn", "ps", "am", "km", "lo", "uz", "ky", "tg",
    )
)

# Scripts, for reporting and for choosing demo languages that span several.
LANGUAGE_SCRIPTS: dict[str, str] = {
    "ar": "Arabic", "fa": "Arabic", "ur": "Arabic", "ps": "Arabic",
    "he": "Hebrew",
    "hi": "Devanagari", "mr": "Devanagari", "ne": "Devanagari",
    "bn": "Bengali", "ta": "Tamil", "te": "Telugu", "ml": "Malayalam",
    "kn": "Kannada", "gu": "Gujarati", "pa": "Gurmukhi", "si": "Sinhala",
    "th": "Thai", "lo": "Lao", "km": "Khmer", "my": "Myanmar",
    "zh": "Han", "ja": "Japanese", "ko": "Hangul",
    "ru": "Cyrillic", "uk": "Cyrillic", "bg": "Cyrillic", "be": "Cyrillic",
    "mk": "Cyrillic", "sr": "Cyrillic", "kk": "Cyrillic", "ky": "Cyrillic",
    "mn": "Cyrillic", "tg": "Cyrillic",
    "el": "Greek", "ka": "Georgian", "hy": "Armenian", "am": "Ethiopic",
}


def script_of(language: str) -> str:
    return LANGUAGE_SCRIPTS.get(language, "Latin")


def check_language(code: str, where: str = "language") -> str:
    """Return ``code`` if known, else raise a one-line SpecError naming it."""
    from trainables.errors import unknown_name

    if code in KNOWN_LANGUAGES:
        return code
    if isinstance(code, bool) or code in ("True", "False"):
        from trainables.errors import SpecError

        raise SpecError(f"{where}: YAML read an unquoted language code as the boolean {code} "
                        f"(no, yes, on, off): quote it, e.g. \"no\"")
    raise unknown_name(where, code, KNOWN_LANGUAGES)
