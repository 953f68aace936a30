"""How eSearch reads text: the analyzers of Kaltura's entry index, as plain functions.

Kaltura indexes ``name``, ``description`` and ``tags`` (one value per tag) as text with the
``kaltura_text`` analyzer, a ``.raw`` keyword (lower-cased, accents folded) and ``.ngrams``
(3-grams of letter/digit runs); kaltura/server
configurations/elastic/mapping/elasticsearch-7/entry_mapping.json. The item types query them so
(plugins/search/providers/elastic_search/lib/model/search/kESearchQueryManager.php):

- EXACT_MATCH on a field that also allows PARTIAL is a ``match_phrase``: the term's words appear
  consecutively in one value (whole words, case and accents ignored); on a keyword field it is
  equality of the normalised value.
- PARTIAL is a ``bool`` of three ``should``s (the partner default "reduce results"): every word of
  the term is a word of the field (``match``, operator AND); or the term equals a whole value
  (``.raw``); or, for a one-word term, at least 80 % of its 3-grams are 3-grams of the field.
- STARTS_WITH is a ``prefix`` on ``.raw``: a value starts with the term.

The standard tokenizer is approximated by runs of word characters after Kaltura's character
filters (apostrophes dropped; ``&``, ``-`` and friends turned into ``__name__`` tokens by
``kaltura_text``, dropped as separators by the PARTIAL search analyzer); folding is Unicode NFKD
without combining marks, plus the few letters NFKD leaves alone (``ł``, ``ø``, ``ß`` ...).
What a field value gives the matchers is computed once per distinct value (``indexed``), so a
query costs a few substring tests per entry; esearch.py memoises them per query on top.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

# kaltura_special_chars_filter: each character becomes a word of its own name.
_SPECIAL = {
    "!": "exclamationmark", "@": "at", "#": "number", "$": "dollar", "%": "percent",
    "^": "caret", "&": "ampersand", "*": "asterisk", "(": "openbracket", ")": "closebracket",
    "-": "hyphen", "=": "equals", "+": "plus", "?": "questionmark", "/": "slash",
    "\\": "backslash", "[": "openbracket1", "]": "closebracket1", "{": "openbracket2",
    "}": "closebracket2", ";": "semicolon", "|": "verticalbar", "<": "lessthan",
    ">": "greaterthan", "~": "tilde",
}
_SPECIAL_MAP = str.maketrans({c: f"__{name}__" for c, name in _SPECIAL.items()})
_APOSTROPHES = str.maketrans({"'": None, "`": None, "\u2018": None})
_FOLD_EXTRA = str.maketrans({"ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d",
                             "ß": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe"})
_WORD = re.compile(r"\w+")
_LETTERS_DIGITS = re.compile(r"[^\W_]+")
_NOT_LETTERS = re.compile(r"[\W_]+")
_CHARACTER_FILTERED = re.compile("[" + re.escape("".join(_SPECIAL) + "'`\u2018") + "]")
# The combining marks NFKD splits off accented letters (the blocks icu_folding removes).
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_SPACES = re.compile(r"\s+")
MAX_TERM_BYTES = 128  # KalturaESearchItemImpl::MAX_SEARCH_TERM_LENGTH, cut with mb_strcut
TRIGRAM_SHARE = 0.8  # the ``ngramPercentage`` default, 80 %


def fold(text: str) -> str:
    """lowercase + icu_folding."""
    if text.isascii():
        return text.lower()  # nothing to fold: the common case, and ten times faster
    text = unicodedata.normalize("NFKD", text.translate(_FOLD_EXTRA))
    return _COMBINING.sub("", text).lower()


def cut_term(term: str) -> str:
    """A search term cut to 128 bytes without splitting a character, as mb_strcut does."""
    data = term.encode("utf-8")
    if len(data) <= MAX_TERM_BYTES:
        return term
    return data[:MAX_TERM_BYTES].decode("utf-8", "ignore")


def values(text: str, multi: bool) -> tuple[str, ...]:
    """A field's values: each tag of a comma-separated tags string, or the one text."""
    if not multi:
        return (text,) if text else ()
    return tuple(v.strip() for v in text.split(",") if v.strip())


def words(text: str) -> tuple[str, ...]:
    """Words as ``kaltura_text`` indexes them (special characters become words)."""
    if _CHARACTER_FILTERED.search(text):  # translate is slow: only when there is work for it
        text = text.translate(_APOSTROPHES).translate(_SPECIAL_MAP)
    return tuple(_WORD.findall(fold(text)))


def search_words(text: str) -> tuple[str, ...]:
    """Words of a PARTIAL term (``kaltura_text_partial_search``: special characters split)."""
    return tuple(_WORD.findall(fold(text.translate(_APOSTROPHES))))


def trigrams(text: str) -> frozenset[str]:
    """The 3-grams of a term's letter/digit runs (``kaltura_ngrams``)."""
    grams: set[str] = set()
    for run in _LETTERS_DIGITS.findall(text.translate(_APOSTROPHES)):
        run = fold(run)
        grams.update(run[i:i + 3] for i in range(len(run) - 2))
    return frozenset(grams)


def raw(text: str) -> str:
    """The ``.raw`` keyword: spaces collapsed, lower-cased, folded."""
    return fold(" ".join(text.split()))


@lru_cache(maxsize=1 << 18)
def indexed(text: str, multi: bool) -> tuple[str, str, str]:
    """What the index holds for a field, as three strings the matchers search with ``in``:

    - the words of each value, space-separated and space-padded, values apart by `` | ``
      (a phrase never spans two tags);
    - the folded text with everything but letters and digits turned into spaces: a 3-gram of
      the field is a 3-gram of one of its letter/digit runs, so ``gram in`` this text;
    - the ``.raw`` form of each value, each line-delimited.

    One entry per distinct field value (200,000 entries share ~130,000 descriptions), so a new
    search term costs a few substring tests per value, not an analysis of every value again.
    """
    field_values = values(text, multi)
    tokens = " | ".join(" ".join(words(value)) for value in field_values)
    letters = _NOT_LETTERS.sub(" ", fold(" ".join(field_values).translate(_APOSTROPHES)))
    raws = "\n".join(raw(value) for value in field_values)
    return f" {tokens} ", f" {letters} ", f"\n{raws}\n"


Matcher = Callable[[str], bool]


def exact(term: str, multi: bool) -> Matcher:
    """match_phrase: the term's words, consecutive, within one value."""
    phrase = " ".join(words(term))
    if not phrase:
        return lambda text: False
    padded = f" {phrase} "
    return lambda text: padded in indexed(text, multi)[0]


def partial(term: str, multi: bool) -> Matcher:
    """match (every word, AND) or .raw equality or, for one word, 80 % of its 3-grams."""
    wanted = tuple(f" {w} " for w in search_words(term))
    whole = f"\n{raw(term)}\n"
    # max_words_for_ngram: only a one-word term is matched by 3-grams.
    grams = trigrams(term) if len(term.split()) <= 1 else frozenset()
    needed = max(1, int(len(grams) * TRIGRAM_SHARE))

    def matches(text: str) -> bool:
        if not text.strip(" ,"):
            return False
        tokens, letters, raws = indexed(text, multi)
        if wanted and all(map(tokens.__contains__, wanted)):
            return True
        if whole in raws:
            return True
        return bool(grams) and sum(map(letters.__contains__, grams)) >= needed

    return matches


def starts(term: str, multi: bool) -> Matcher:
    """prefix on .raw: a value starts with the term."""
    prefix = f"\n{raw(term)}"
    return lambda text: prefix in indexed(text, multi)[2]


def keyword(value: str) -> str:
    """A keyword field's normalised value (kaltura_keyword_normalizer) or a term for it
    (elasticSearchUtils::formatSearchTerm: spaces collapsed, lower-cased, trimmed)."""
    return _SPACES.sub(" ", value).strip().lower()
