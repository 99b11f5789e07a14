"""HTML product descriptions to plain text, with the stdlib parser (no BeautifulSoup dependency)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Tags that end a visual line; their text would otherwise run into the next block's.
_BLOCK_TAGS = frozenset(
    "address article br dd div dl dt h1 h2 h3 h4 h5 h6 hr li ol p pre section table td th tr ul".split()
)
# Tags whose content is never shown to a reader.
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title", "noscript"})
_HTML_HINT = re.compile(r"<[a-zA-Z/!]|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in _HIDDEN_TAGS:
            self.hidden_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _HIDDEN_TAGS:
            self.hidden_depth = max(0, self.hidden_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden_depth:
            self.parts.append(data)


def html_to_text(text: str | None) -> str | None:
    """Visible text of an HTML fragment: tags dropped, entities decoded, one line per block, runs of
    blanks collapsed. Plain text passes through with only its whitespace tidied. Empty -> None."""
    if text is None:
        return None
    if _HTML_HINT.search(text):
        parser = _TextCollector()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    lines = (" ".join(line.split()) for line in text.splitlines())
    tidy = "\n".join(line for line in lines if line)
    return tidy or None
