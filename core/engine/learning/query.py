"""Question cues: does a post ask something, and is the question meant to be answered?

The '?' cue is counted outside links ("t.co/x?amp=1" asks nothing), in the marks other scripts use
("¿", "؟"). A rhetorical question ("seriously?!", "how hard can it be?", "are you kidding me?") asks
nothing: in a rant it is an exclamation, so it earns no query credit. ("?!" alone is not counted as
rhetorical: in the tweet_acts training rows about half of such posts are real questions.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from socialcrm.core.engine.learning.terms import TermMatcher

_URL = re.compile(r"(?:https?://|www\.)\S+")
_QUESTION_MARK = re.compile(r"[?¿؟]")

#: Phrases that make a question rhetorical, per language (English ones apply everywhere).
RHETORICAL: dict[str, list[str]] = {
    "en": ["seriously?", "are you kidding", "are you serious", "are you joking", "you kidding me",
           "how hard is it", "how hard can it be", "how is this acceptable", "how is this legal", "how is that legal",
           "is this a joke", "what is wrong with", "what's wrong with you", "what's wrong with them",
           "who thought this", "who thought that", "why would anyone", "why do i even", "why do i bother",
           "why is it so hard", "what a joke", "what is the point", "what's the point",
           "who does that", "can you believe", "how dare", "how many times", "how much longer", "am i the only one",
           "why am i not surprised", "is it too much to ask", "what did i expect", "guess what"],
    "es": ["en serio?", "es broma", "es una broma", "cuántas veces", "a quién se le ocurre", "qué os pasa"],
    "fr": ["sérieusement", "c'est une blague", "combien de fois", "vous vous moquez"],
    "de": ["ernsthaft?", "im ernst", "soll das ein witz sein", "wie oft noch", "geht's noch"],
    "pt": ["é sério", "é brincadeira", "quantas vezes", "tá de brincadeira"],
    "it": ["sul serio", "è uno scherzo", "quante volte", "ma scherziamo"],
}


@dataclass
class QuestionCue:
    """Whether a post asks (a question mark outside links) and the rhetorical phrases found."""

    asks: bool
    rhetorical: list[str]

    @property
    def sincere(self) -> bool:
        """A question that waits for an answer: asked, and not rhetorical."""
        return self.asks and not self.rhetorical


class QuestionReader:
    """Reads the question cue of a post; one per classifier (the phrase table is built once)."""

    def __init__(self, rhetorical: dict[str, list[str]] | None = None):
        self._rhetorical = TermMatcher({"rhetorical": rhetorical or RHETORICAL})

    def read(self, text: str, lang: str | None, rhetorical: list[str] | None = None) -> QuestionCue:
        """The question cue of ``text`` in ``lang`` (``rhetorical``: the ``RHETORICAL`` phrases in it,
        when the caller has matched them already)."""
        if "?" not in text and "¿" not in text and "؟" not in text:
            return QuestionCue(False, [])
        bare = _URL.sub(" ", text) if "/" in text else text
        if not _QUESTION_MARK.search(bare):
            return QuestionCue(False, [])
        if rhetorical is None:
            rhetorical = self._rhetorical.match(bare, lang).get("rhetorical", [])
        return QuestionCue(True, rhetorical)
