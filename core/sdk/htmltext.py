"""HTML to plain text for connectors whose networks send HTML (Hacker News comments, feed summaries).

Paragraphs and line breaks become newlines, entities are decoded, scripts and styles are dropped, and
every link is expanded: a link whose text is its own (often shortened) address becomes the full
address, and a link with words becomes ``words (address)``, so nothing a person linked to is lost
on the way to a CRM that shows plain text. Links marked up as a mention or a hashtag (the
``class="mention"`` / ``class="hashtag"`` microformats Mastodon and other ActivityPub servers send)
stay as written (``@name``, ``#tag``): their address is the profile or tag page, not something said.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "pre", "blockquote", "tr", "table", "section",
                     "article", "header", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "dd", "dt"})
_SKIP = frozenset({"script", "style", "head", "title"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_AS_WRITTEN = frozenset({"mention", "hashtag"})


def _looks_like_address(text: str) -> bool:
    text = text.strip().lower()
    return text.startswith(("http://", "https://", "www.")) or text.endswith(("...", "\u2026"))


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.link: tuple[str, bool, list[str]] | None = None  # (href, keep as written, text parts) of the open <a>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag == "a":
            self._close_link()
            found = dict(attrs)
            self.link = (found.get("href") or "", bool(_AS_WRITTEN & set((found.get("class") or "").split())), [])
        elif tag in _BLOCKS:
            self._emit("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self._emit("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "a":
            self._close_link()
        elif tag in _BLOCKS:
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.link is not None:
            self.link[2].append(data)
        else:
            self.out.append(data)

    def _emit(self, text: str) -> None:
        if self.link is not None:
            self.link[2].append(text)
        else:
            self.out.append(text)

    def _close_link(self) -> None:
        if self.link is None:
            return
        href, as_written, parts = self.link
        self.link = None
        text = "".join(parts).strip()
        if as_written or not href.startswith(("http://", "https://")):
            self.out.append(text)
        elif not text or text == href or _looks_like_address(text):
            self.out.append(href)
        else:
            self.out.append(f"{text} ({href})")

    def text(self) -> str:
        self._close_link()
        lines = (_SPACES.sub(" ", line).strip() for line in "".join(self.out).split("\n"))
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str | None) -> str:
    """Plain text of an HTML fragment, links expanded; ``None`` or empty gives ``""``."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return _SPACES.sub(" ", html).strip()
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return collector.text()


__all__ = ["html_to_text"]
