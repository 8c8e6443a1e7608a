"""The built-in classifier: content-library terms and lexicon sentiment decide a mention's type.

Each signal adds to a score per type; the reasons list says which terms and rules decided. The
scores are deliberately simple and readable: a support lead can see why a mention became a case.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..brand import Brand
from ..model import NOISE_TYPES, Mention, Record
from .influence import influence_of
from .language import detect as detect_language
from .priority import prioritise
from .sentiment import lexicon_scores, sentiment_from_lexicon
from .terms import TermMatcher, merge_terms

ACTIONABLE = ("case", "lead", "rfe", "query", "rant", "rave")  # ties go to the earlier, more actionable type
URL = re.compile(r"https?://\S+")
RT_PREFIX = re.compile(r"^RT @\w+:\s*")


@dataclass
class Decision:
    """The type with the scores and terms behind it."""

    type: str
    fraud: bool
    scores: dict[str, float]
    terms: dict[str, list[str]]
    reason: str


class Classifier:
    """Turns mentions into records: type, sentiment, influence, mode, priority, action and reasons."""

    def __init__(self, brand: Brand, terms: dict[str, dict[str, list[str]]] | None = None,
                 default_terms: bool = True, high_influence: int = 70, languages: tuple[str, ...] | None = None):
        self.brand = brand
        self.languages = languages
        self.high_influence = high_influence
        self.matcher = TermMatcher(merge_terms(terms or {}, default_terms))

    def learn(self, mentions: Sequence[Mention]) -> list[Record]:
        """One record per mention, in order."""
        return [self.learn_one(m) for m in mentions]

    def learn_one(self, mention: Mention) -> Record:
        """Classify one mention into a record (not yet routed)."""
        text = RT_PREFIX.sub("", mention.text) if mention.repost_of else mention.text
        reasons: list[str] = []
        if mention.lang:
            lang = mention.lang.split("-")[0].lower()
        else:
            detected, probability = detect_language(text, self.languages)
            lang = detected or "und"
            reasons.append(f"language {lang} (detected, p={probability:.2f})" if detected
                           else f"language unknown (detection unsure, p={probability:.2f})")
        lexicon = lexicon_scores(text)
        sentiment = sentiment_from_lexicon(lexicon)
        if lang == "en":
            reasons.append(f"sentiment {sentiment.label} ({sentiment.score:+.2f}, VADER lexicon)")
        else:
            reasons.append(f"sentiment {sentiment.label} ({sentiment.score:+.2f}, VADER lexicon; language "
                           f"{lang!r} is not covered by the lexicon, low confidence)")
        mode, mode_reason = self.mode_of(mention, text)
        reasons.append(mode_reason)
        decision = self.decide(text, lang, lexicon["compound"], mention, mode)
        reasons.append(decision.reason)
        influence, influence_reason = influence_of(mention.author, mention.engagement)
        reasons.append(influence_reason)
        if mention.repost_of:
            reasons.append(f"first heard through a repost ({mention.id})")
        record = Record(
            id=mention.canonical_id, network=mention.network, content=text, created_at=mention.created_at,
            author=mention.author, source=mention.source, url=mention.url, lang=lang, type=decision.type,
            sentiment=sentiment, influence=influence, mode=mode, reasons=reasons, fraud=decision.fraud,
            engagement=mention.engagement)
        record.priority, record.action, why = prioritise(record, self.high_influence)
        reasons.append(why)
        return record

    def mode_of(self, mention: Mention, text: str) -> tuple[str, str]:
        """reactive (addressed to the brand), proactive (about it) or progressive (competitor, category)."""
        handle = self.brand.addressed_in(text)
        if mention.addressed_to_brand or handle:
            return "reactive", f"mode reactive: addressed to the brand ({handle or 'a reply or mention'})"
        named = self.brand.named_in(text)
        if named:
            return "proactive", f"mode proactive: names the brand ({named!r}) without addressing it"
        competitor = self.brand.competitor_in(text)
        if competitor:
            return "progressive", f"mode progressive: about competitor {competitor!r}"
        return "progressive", "mode progressive: about the category, the brand is not named"

    def decide(self, text: str, lang: str, compound: float, mention: Mention, mode: str) -> Decision:
        """Score each type from terms and signals and pick one."""
        terms = self.matcher.match(text, lang)
        scores = {kind: float(len(found)) for kind, found in terms.items() if kind != "fraud"}
        notes: list[str] = []

        def add(kind: str, amount: float, why: str) -> None:
            scores[kind] = scores.get(kind, 0.0) + amount
            notes.append(why)

        if "spam" in scores:
            add("spam", 0.5 * scores["spam"], "spam terms weigh 1.5")
        links = len(URL.findall(text))
        if links >= 2:
            add("spam", 0.5, f"{links} links")
        if mention.network == "rss":
            add("news", 1.0, "an article from a feed")
        if "?" in text and not scores.get("case"):
            add("query", 0.5, "asks a question")
        if compound <= -0.4:
            add("rant", 0.5 if compound > -0.7 else 1.0, "strongly negative")
            if scores.get("case"):
                add("case", 0.5, "negative with a concrete problem")
        if (compound >= 0.5 and "rave" in scores) or compound >= 0.7:
            add("rave", 0.5, "strongly positive")
        if compound < 0 and scores.get("rave"):
            scores["rave"] /= 2
            notes.append("praise words in a negative post (sarcasm?) count half")

        fraud_terms = terms.get("fraud", [])
        spam = scores.get("spam", 0.0)
        best = max(ACTIONABLE, key=lambda k: (scores.get(k, 0.0), -ACTIONABLE.index(k)))
        best_score = scores.get(best, 0.0)
        if spam >= 1.5 and spam >= best_score:
            kind = "spam"
        elif scores.get("news", 0.0) >= 1 and mode != "reactive" and scores["news"] >= best_score:
            kind = "news"
        elif fraud_terms:
            kind = "case"
        elif best_score >= 0.5:
            kind = best
        else:
            kind = "other"
        fraud = bool(fraud_terms) and kind not in NOISE_TYPES
        reason = self._explain(kind, fraud, scores, terms, notes)
        return Decision(kind, fraud, scores, terms, reason)

    @staticmethod
    def _explain(kind: str, fraud: bool, scores: dict[str, float], terms: dict[str, list[str]],
                 notes: list[str]) -> str:
        ranked = sorted(((s, k) for k, s in scores.items() if s > 0), reverse=True)[:3]
        score_text = ", ".join(f"{k} {s:g}" for s, k in ranked) or "no type scored"
        found = "; ".join(f"{k}: {', '.join(repr(t) for t in v[:4])}" for k, v in terms.items())
        parts = [f"type {kind}: scores {score_text}"]
        if found:
            parts.append(f"terms {found}")
        if notes:
            parts.append("signals " + ", ".join(dict.fromkeys(notes)))
        if fraud:
            parts.append("fraud terms make it a case for the fraud rule")
        if kind == "other":
            parts.append("nothing marks it as a type that needs action")
        return " | ".join(parts)
