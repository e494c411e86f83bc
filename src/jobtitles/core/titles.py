"""What a title may be before any tokenizer or TF-IDF sees it, the same in training and every prediction path:
a string of at most MAX_TITLE_CHARS characters (longer ones are cut and flagged, like token truncation: a
title of megabytes would hold a model worker for seconds), with lone UTF-16 surrogates (which no UTF-8
tokenizer can encode) replaced by U+FFFD."""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from jobtitles.core.errors import UserError

# Far above any real title (the longest of the project's benchmark sets has 120 characters) and above what
# max_length tokens can cover in practice, so only hostile or broken input is cut.
MAX_TITLE_CHARS = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")
_VISIBLE_ASCII = re.compile("[!-~]")
VISIBLE = frozenset("LNPSM")  # Unicode categories of letters, numbers, punctuation, symbols and marks
SCAN_CHARS = 10_000  # the blank check looks this far (far beyond what a model reads): a megabyte of blanks is cheap


def is_blank(title: object) -> bool:
    """The one rule for an empty title on every prediction path: not a string, or nothing visible in it (only
    spaces, control and zero-width characters). Such a title gets no labels: [] from TitleClassifier.predict,
    null from Spark, skipped by predict.py and the page's CSV upload, 422 `empty_title` from the JSON API."""
    if not isinstance(title, str):
        return True
    if title.isascii():  # the common case, at C speed: printable ASCII other than space is exactly what is visible
        return _VISIBLE_ASCII.search(title) is None
    return not any(unicodedata.category(c)[0] in VISIBLE for c in title[:SCAN_CHARS])


def clean_title(title: str) -> tuple[str, bool]:
    """(the title as the models see it, whether it was cut)."""
    if not title.isascii():
        title = _SURROGATE.sub("\ufffd", title)
    if len(title) > MAX_TITLE_CHARS:
        return title[:MAX_TITLE_CHARS], True
    return title, False


def clean_titles(titles: Sequence[str]) -> tuple[list[str], list[bool]]:
    out, cut = [], []
    for i, title in enumerate(titles):
        if not isinstance(title, str):
            raise UserError(f"title {i} must be a string, found {type(title).__name__} ({title!r:.60}); pass text")
        text, was_cut = clean_title(title)
        out.append(text)
        cut.append(was_cut)
    return out, cut
