"""User text (titles, labels, notes) inside the Markdown people read: report.md and the model card."""

from __future__ import annotations

import html
import re

CELL_CHARS = 60  # a title in a card's table cell is cut to this many characters

_MARKDOWN = re.compile(r"([\\`*_\[\]|#~])")


def md_cell(text: str, most: int | None = CELL_CHARS) -> str:
    """`text` as one Markdown table cell: one line, at most `most` characters (None: all of it), no HTML and no
    Markdown of its own (backslashes, pipes, emphasis, links, code are escaped: a title ending in a backslash
    or holding a pipe cannot end its cell)."""
    text = " ".join(text.split())
    if most is not None and len(text) > most:
        text = text[:most - 1] + "…"
    return _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))
