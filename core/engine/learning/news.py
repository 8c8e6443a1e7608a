"""News signals: a post that reports rather than speaks, read from its shape and its source.

News is written in the third person about a company ("Brightwave to raise prices", "the company
says"), often as a headline ("BREAKING:", "X to hike prices from April"), with a link to an article,
and is not addressed to the brand. An item from a feed, or a story title submitted to Hacker News, is news unless it reads like a personal
post ("Why I finally left ...", a blog's "an honest review"; "Ask HN:" and "Show HN:" are not news). The content library's news terms ("announces",
"according to") come on top; the classifier decides.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from socialcrm.core.engine.learning.spam import find_links
from socialcrm.core.engine.learning.terms import tokens
from socialcrm.core.sdk.model import Mention

#: The first person singular, in the languages the content library speaks: people say "I", reports do
#: not (an outlet's editorial "we" and its "you" are left out). Words that are also other words in a
#: neighbour language ("im" in German, "eu" beside EU, "du" in French) are left out too.
PERSONAL_WORDS = frozenset({"i", "i'm", "i've", "i'd", "i'll", "me", "my", "mine", "ive", "yo", "mis", "tengo", "je",
                            "j'ai", "moi", "mon", "ich", "mich", "mein", "meine", "meinen", "meu", "minha", "io",
                            "mio", "ik", "mijn"})
_SHOW_OR_ASK = re.compile(r"^\s*(?:ask|show|tell|launch) hn\b", re.IGNORECASE)
_HEADLINE_OPENER = re.compile(r"^\s*(?:RT @\w+:\s*)?(?:BREAKING|JUST IN|UPDATE|EXCLUSIVE|ALERT|SCAM ALERT)\b\s*[:\-—]",
                              re.IGNORECASE)
# "Brightwave to raise prices", "Orbit Fiber to expand into Leeds": the headline future.
_HEADLINE_FUTURE = re.compile(
    r"^(?:RT @\w+:\s*)?[A-Z][\w'&.-]*(?:\s+[A-Z0-9][\w'&.-]*){0,3}\s+to\s+(?:raise|hike|cut|open|close|scrap|"
    r"launch|expand|buy|sell|axe|shut|end|offer|roll|invest|hire|merge|acquire|enter|exit|drop|add|bring|pay|face)\b")
# An article's address: a dated path (/2026/10/02/) or a slug of four or more hyphenated words.
_ARTICLE_PATH = re.compile(r"/(?:19|20)\d\d/|/[a-z0-9]+(?:-[a-z0-9]+){3,}", re.IGNORECASE)
#: Hosts of personal writing: a feed item from one is a post, not a report.
PERSONAL_HOSTS = ("substack.com", "medium.com", "blogspot.", "wordpress.com", "tumblr.com", "ghost.io")


@dataclass
class NewsSignals:
    """The news score a post's shape and source earn, and the reasons."""

    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    personal: bool = False

    def add(self, amount: float, why: str) -> None:
        """Count one signal."""
        self.score += amount
        self.reasons.append(why)


def personal_host(url: str | None) -> bool:
    """Whether ``url`` is on a host of personal writing (a blog platform, or a ``.blog`` domain)."""
    host = urlsplit(url or "").netloc.lower()
    return bool(host) and (host.endswith(".blog") or any(h in host for h in PERSONAL_HOSTS))


def read_news(text: str, mention: Mention, news_terms: int, words: list[str] | None = None,
              links: list[str] | None = None) -> NewsSignals:
    """The news signals in ``text`` (``news_terms``: how many content-library news terms it has;
    ``words``: its ``terms.tokens`` and ``links``: its ``spam.find_links``, when the caller has them)."""
    signals = NewsSignals()
    feed = mention.network == "rss"
    words = tokens(text) if words is None else words
    signals.personal = not PERSONAL_WORDS.isdisjoint(words) or (feed and personal_host(mention.url))
    if feed:
        if signals.personal:
            signals.add(0.5, "a feed item that reads like a personal post")
        else:
            signals.add(1.0, "an article from a feed")
    elif mention.network == "hackernews" and not mention.reply_to and not _SHOW_OR_ASK.search(text):
        if signals.personal:
            signals.add(0.5, "a story title that reads like a personal post")
        else:
            signals.add(1.0, "a story submitted as a link")
    if _HEADLINE_OPENER.search(text):
        signals.add(1.0, "a news headline opener")
    if not signals.personal:
        if " to " in text and _HEADLINE_FUTURE.search(text):
            signals.add(1.0, "a headline ('X to ...')")
        links = find_links(text) if links is None else links
        if any("/" in link and _ARTICLE_PATH.search(link) for link in links):
            signals.add(0.5, "a link to an article")
        if signals.score or news_terms:
            signals.add(0.5, "written in the third person")
    elif news_terms and not feed:
        signals.add(-0.5 * news_terms, "news words in a personal post count half")
    return signals
