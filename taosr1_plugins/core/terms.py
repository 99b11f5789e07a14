"""Query terms matched against item text: the lexical evidence a rater checks first.

One tokenizer for every place that compares words: BM25 retrieval of neighbours, the template teacher's
trace and the student prompt's term-match line. If the prompt counted terms one way and the trace another,
the student would be taught two answers to the same question.
"""

from __future__ import annotations

import re

# Latin/digit words, or maximal runs of CJK ideographs, kana and hangul.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
TOKEN_RE = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
CJK_RUN_RE = re.compile(rf"^[{_CJK}]+$")

# Only the most frequent English function words: BM25's IDF handles the rest, and a long list would
# drop words that carry product meaning ("top", "back", "case").
STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on", "or", "the", "to", "with"}
)


def compare_terms(query: str, item_text: str) -> tuple[list[str], list[str]]:
    """Query terms a rater would check one by one, split into (found in the item, not found).

    Words are matched as words (with a crude plural rule). Chinese has no spaces, so a CJK run is cut
    greedily into the longest pieces that occur in the item text; the characters between them form
    the missing terms.
    """
    item_text = item_text.casefold()
    item_words = {w for w in TOKEN_RE.findall(item_text) if not CJK_RUN_RE.match(w)}
    matched: list[str] = []
    missing: list[str] = []
    for match in TOKEN_RE.finditer(query.casefold()):
        run = match.group(0)
        if CJK_RUN_RE.match(run):
            for piece, found in _cjk_pieces(run, item_text):
                (matched if found else missing).append(piece)
        elif run not in STOPWORDS:
            (matched if _word_in_item(run, item_text, item_words) else missing).append(run)
    return list(dict.fromkeys(matched)), list(dict.fromkeys(missing))


def _cjk_pieces(run: str, item_text: str) -> list[tuple[str, bool]]:
    pieces: list[tuple[str, bool]] = []
    unmatched = ""
    i = 0
    while i < len(run):
        j = next((j for j in range(len(run), i, -1) if run[i:j] in item_text), None)
        if j is None:
            unmatched += run[i]
            i += 1
            continue
        if unmatched:
            pieces.append((unmatched, False))
            unmatched = ""
        pieces.append((run[i:j], True))
        i = j
    if unmatched:
        pieces.append((unmatched, False))
    return pieces


def _word_in_item(word: str, item_text: str, item_words: set[str]) -> bool:
    if any(ch.isdigit() for ch in word):
        return word in item_text  # "32gb" inside "32gb/64gb"
    # A crude singular/plural match: "shoes" should find "shoe" and the other way round.
    stem = word[:-1] if word.endswith("s") and len(word) > 3 else word
    return word in item_words or stem in item_words or f"{stem}s" in item_words
