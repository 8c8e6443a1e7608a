"""The built-in classifier: content-library terms, lexicon sentiment and the text model decide a type.

Each signal adds to a score per type; the reasons list says which terms, model scores and rules
decided. With the text model (``core/engine/learning/textmodel/``) its sentiment head gives the sentiment,
its complaint and suggestion heads weigh in on case/rant and rfe, and its question head (with the '?'
cue and the query terms, :mod:`.query`) on query; without it the lexicon and the content library decide
alone. Spam (:mod:`.spam`) and news (:mod:`.news`) add the shape of a post to their terms. Sentiment
reasons name the language and whether the model (or VADER, without one) was trained on it. Either way
a support lead can read why a mention became a case.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.model import NOISE_TYPES, Mention, Record, Sentiment
from socialcrm.core.engine.learning.influence import influence_of
from socialcrm.core.engine.learning.language import detect as detect_language
from socialcrm.core.engine.learning.news import read_news
from socialcrm.core.engine.learning.priority import prioritise
from socialcrm.core.engine.learning.query import RHETORICAL, QuestionReader
from socialcrm.core.engine.learning.sentiment import lexicon_scores, sentiment_from_lexicon
from socialcrm.core.engine.learning.spam import CALLS_TO_ACTION, SPAM_AT, SPAM_HINTS, SpamReader
from socialcrm.core.engine.learning.terms import TermMatcher, merge_terms, tokens

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.engine.learning.query import QuestionCue
    from socialcrm.core.engine.learning.textmodel import TextModel, TextScores

ACTIONABLE = ("case", "lead", "rfe", "query", "rant", "rave")  # ties go to the earlier, more actionable type
RT_PREFIX = re.compile(r"^RT @\w+:\s*")
#: Phrase tables the classifier's one matcher reads beside the content library (not types: cues).
CUE_TABLES = {"cta": CALLS_TO_ACTION, "hint": SPAM_HINTS, "rhetorical": RHETORICAL}
#: VADER's lexicon is English; the lexicon path's sentiment elsewhere counts for less and says so.
LEXICON_LANGUAGES = ("en",)
#: How much a term or signal for case/rant (rfe) still counts when the model says "no complaint"
#: ("no suggestion"): enough to break ties, not enough to make the type alone (one term, 1 x 0.45,
#: stays under the 0.5 a type needs; two terms make it). Chosen on the complaints training rows: at
#: 0.6 a single term such as "still waiting" or "need help" overrode the model's "no complaint".
DAMPING = 0.45
#: How far the sentiment head must lean to praise (P(positive) - P(negative)) for a post with praise terms
#: that the complaint head claims to count as a rave (a problem solved, told as thanks), not a complaint.
PRAISE_STORY = 0.15
#: A news score (terms and signals) at which a third-person post is news even where the complaint
#: head hears a complaint in it ("Thousands of homes without broadband after ..."): a term and a
#: headline shape, or two terms and the third person.
REPORTED_AT = 2.0
#: The languages the question head was trained in (tweet_acts is English) when the artefact does not say;
#: elsewhere the '?' and the content library decide whether a post is a query.
QUESTION_HEAD_LANGUAGES = ("en",)
#: A problem told as solved, and what says it is not solved after all ("fixed... and down again").
RESOLVED = re.compile(r"\b(fixed|sorted|resolved|solved|working again|back (?:up|online)|up and running)\b", re.I)
UNRESOLVED = re.compile(r"\b(still|again|yet|not (?:fixed|sorted|resolved))\b", re.I)


def told_as_solved(text: str) -> bool:
    """The post says a problem was solved ("fixed", "sorted") and nothing says it is not ("still", "again")."""
    return bool(RESOLVED.search(text)) and not UNRESOLVED.search(text)


#: Posts shorter than this (in words) give the model too little to read: there the terms decide.
SHORT_POST_WORDS = 8


@dataclass
class Decision:
    """The type with the scores and terms behind it."""

    type: str
    fraud: bool
    scores: dict[str, float]
    terms: dict[str, list[str]]
    reason: str
    confidence: float = 0.5


class Classifier:
    """Turns mentions into records: type, sentiment, influence, mode, priority, action and reasons."""

    def __init__(self, brand: Brand, terms: dict[str, dict[str, list[str]]] | None = None,
                 default_terms: bool = True, high_influence: int = 70, languages: tuple[str, ...] | None = None,
                 model: "TextModel | None" = None, high_reach: int = 10_000):
        self.brand = brand
        self.high_reach = high_reach
        self.languages = languages
        self.high_influence = high_influence
        # One matcher reads the content library and the cues the spam and question readers use: one
        # pass over a post's tokens instead of three.
        self.matcher = TermMatcher({**merge_terms(terms or {}, default_terms), **CUE_TABLES})
        self.model = model
        #: The languages sentiment was trained on: the model's, or VADER's English without a model.
        self.sentiment_languages = tuple(model.languages) if model is not None else LEXICON_LANGUAGES
        self.spam_reader = SpamReader()
        self.question_reader = QuestionReader()
        self._brand_handles = frozenset(h.lower() if h.startswith("@") else "@" + h.lower()
                                        for h in brand.handles)

    def learn(self, mentions: Sequence[Mention], repeats: Sequence[int] | None = None,
              followups: Sequence[int] | None = None) -> list[Record]:
        """One record per mention, in order. The text model scores the whole batch at once.

        ``repeats[i]``: how many near-identical posts by other accounts came before ``mentions[i]``
        (capture counts them); repeated posts are a mark of spam. ``followups[i]``: how many unanswered
        follow-ups ``mentions[i]`` makes in its conversation (priority rule 7).
        """
        texts = [RT_PREFIX.sub("", m.text) if m.repost_of else m.text for m in mentions]
        lexicons = [lexicon_scores(t) for t in texts]
        scores: Sequence[TextScores | None] = (self.model.score(texts, lexicons) if self.model and texts
                                               else [None] * len(texts))
        repeats = repeats or [0] * len(texts)
        followups = followups or [0] * len(texts)
        return [self._learn(m, t, lex, sc, r, f)
                for m, t, lex, sc, r, f in zip(mentions, texts, lexicons, scores, repeats, followups)]

    def learn_one(self, mention: Mention) -> Record:
        """Classify one mention into a record (not yet routed)."""
        return self.learn([mention])[0]

    def _learn(self, mention: Mention, text: str, lexicon: dict[str, float], scores: "TextScores | None",
               repeats: int = 0, followups: int = 0) -> Record:
        reasons: list[str] = []
        if mention.lang:
            lang = mention.lang.split("-")[0].lower()
        else:
            detected, probability = detect_language(text, self.languages)
            lang = detected or "und"
            reasons.append(f"language {lang} (detected, p={probability:.2f})" if detected
                           else f"language unknown (detection unsure, p={probability:.2f})")
        covered = lang in self.sentiment_languages
        sentiment, confidence, why = self.sentiment_of(lexicon, scores, covered, lang, self.sentiment_languages)
        reasons.append(why)
        mode, mode_reason = self.mode_of(mention, text)
        reasons.append(mode_reason)
        decision = self.decide(text, lang, lexicon["compound"], mention, mode, scores, covered, repeats)
        reasons.append(decision.reason)
        influence, influence_reason = influence_of(mention.author, mention.engagement)
        reasons.append(influence_reason)
        if mention.repost_of:
            reasons.append(f"first heard through a repost ({mention.id})")
        record = Record(
            id=mention.canonical_id, network=mention.network, content=text, created_at=mention.created_at,
            author=mention.author, source=mention.source, url=mention.url, lang=lang, type=decision.type,
            sentiment=sentiment, influence=influence, mode=mode, reasons=reasons, fraud=decision.fraud,
            engagement=mention.engagement, confidence=round(min(confidence, decision.confidence), 2),
            conversation=mention.conversation_id, parent=mention.reply_to)
        record.priority, record.action, why = prioritise(record, self.high_influence, self.high_reach, followups)
        reasons.append(why)
        return record

    @staticmethod
    def sentiment_of(lexicon: dict[str, float], scores: "TextScores | None", covered: bool,
                     lang: str, trained_on: tuple[str, ...] = LEXICON_LANGUAGES) -> tuple[Sentiment, float, str]:
        """The sentiment, how sure it is (0-1), and the sentence saying why, naming the language and
        whether the sentiment was trained on it (``trained_on``); elsewhere confidence is halved."""
        if scores is None:
            sentiment = sentiment_from_lexicon(lexicon)
            confidence = min(1.0, 0.5 + abs(sentiment.score) / 2) * (1.0 if covered else 0.5)
            language = (f"; VADER is English-only, language {lang}" if covered else
                        f"; VADER is English-only and this is language {lang!r}, low confidence")
            return sentiment, confidence, f"sentiment {sentiment.label} ({sentiment.score:+.2f}, VADER lexicon{language})"
        caveat = (f"; language {lang}, which the model was trained on" if covered else
                  f"; language {lang!r} has no training data (the model was trained on {', '.join(trained_on)}), "
                  f"low confidence")
        probs = scores.sentiment
        label = max(probs, key=probs.get)
        sentiment = Sentiment(label, round(probs["positive"] - probs["negative"], 4))
        confidence = probs[label] * (1.0 if covered else 0.5)
        evidence = ", ".join(f"{name!r}" for name, _ in scores.evidence[:4])
        because = f"; because of {evidence}" if evidence else ""
        return sentiment, confidence, (f"sentiment {label} (model p={probs[label]:.2f}, VADER "
                                       f"{lexicon['compound']:+.2f}{because}{caveat})")

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

    def decide(self, text: str, lang: str, compound: float, mention: Mention, mode: str,
               model: "TextScores | None" = None, covered: bool = True, repeats: int = 0) -> Decision:
        """Score each type from terms, signals and the model's heads, and pick one."""
        words = tokens(text)
        found = self.matcher.match(text, lang, words)
        cues = {kind: found.pop(kind) for kind in CUE_TABLES if kind in found}
        terms = found
        scores = {kind: float(len(found)) for kind, found in terms.items() if kind not in ("fraud", "spam")}
        notes: list[str] = []

        def add(kind: str, amount: float, why: str) -> None:
            scores[kind] = scores.get(kind, 0.0) + amount
            notes.append(why)

        spam = self.spam_reader.read(text, lang, self._brand_handles, repeats, len(terms.get("spam", ())), words,
                                     {"cta": cues.get("cta", []), "hint": cues.get("hint", [])})
        if spam.score:
            scores["spam"] = spam.score
            notes.extend(spam.reasons)
        news = read_news(text, mention, len(terms.get("news", ())), words, spam.link_texts)
        if news.score:
            add("news", news.score, ", ".join(news.reasons))
        reported = not news.personal and scores.get("news", 0.0) >= REPORTED_AT
        question = self.question_reader.read(text, lang, cues.get("rhetorical", []))
        if question.rhetorical:
            notes.append(f"a rhetorical question ({', '.join(repr(t) for t in question.rhetorical[:2])})")
        fraud_terms = terms.get("fraud", [])
        asked = False  # the question head read an information-seeking question
        if model is not None and mention.network != "rss":
            self._weigh_model(model, scores, notes, add, covered, mode, bool(fraud_terms), text)
            asked = self._weigh_question(model, question, terms, scores, notes, add, covered, lang, mode)
        else:
            if question.sincere and not scores.get("case") and not scores.get("lead"):
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

        best = max(ACTIONABLE, key=lambda k: (scores.get(k, 0.0), -ACTIONABLE.index(k)))
        best_score = scores.get(best, 0.0)
        # Spam never swallows a complaint said to the brand: there it must clearly outscore the complaint.
        margin = 1.0 if mode == "reactive" and best in ("case", "rant") and best_score > 0 else 0.0
        if spam.score >= SPAM_AT and spam.score >= best_score + margin:
            kind = "spam"
        elif scores.get("news", 0.0) >= 1 and mode != "reactive" and (scores["news"] >= best_score or reported):
            # a report of an outage reads like a complaint to the complaint head; told in the third
            # person with a news shape, it is news
            kind = "news"
        elif fraud_terms:
            kind = "case"
        elif asked:
            # an information-seeking question is a query even where the complaint or suggestion head
            # also fires on its tone ("why is Peeves scared?"); _weigh_question left cases and leads alone
            kind = "query"
            if best != "query":
                notes.append(f"the question outranks {best}")
        elif best_score >= 0.5:
            kind = best
        else:
            kind = "other"
        fraud = bool(fraud_terms) and kind not in NOISE_TYPES
        total = sum(v for v in scores.values() if v > 0)
        confidence = 0.5 if kind == "other" or not total else min(1.0, 0.35 + 0.65 * scores.get(kind, 0.0) / total)
        if fraud:
            confidence = max(confidence, 0.8)
        reason = self._explain(kind, fraud, scores, terms, notes)
        return Decision(kind, fraud, scores, terms, reason, round(confidence, 2))

    def _weigh_model(self, model: "TextScores", scores: dict[str, float], notes: list[str], add, covered: bool,
                     mode: str, fraud: bool, text: str) -> None:
        """Fold the model's complaint, suggestion and sentiment heads into the type scores."""
        weight = 1.0 if covered else 0.5
        c_threshold = self.model.complaint_threshold
        s_threshold = self.model.suggestion_threshold
        p_complaint, p_suggestion = model.complaint, model.suggestion
        p_positive, p_negative = model.sentiment["positive"], model.sentiment["negative"]
        # "Engineer came out same day, legends": a problem told as praise reads like a complaint to the
        # complaint head, but the sentiment head hears the praise. Such a post is a rave to engage.
        # A post that says the problem was solved needs only not to lean clearly negative: the problem's own
        # words ("broken line") pull the sentiment head down even as the post thanks.
        lean = p_positive - p_negative
        praise_story = (p_complaint >= c_threshold and bool(scores.get("rave"))
                        and (lean >= PRAISE_STORY or (lean > -PRAISE_STORY and told_as_solved(text))))
        if p_complaint >= c_threshold and not praise_story:
            strength = weight * (1.0 + 2.0 * (p_complaint - c_threshold) / max(1e-6, 1 - c_threshold))
            # A complaint that names a concrete problem, or is said to the brand, is a case to work;
            # one without either is a rant (brand risk).
            concrete = scores.get("case", 0.0) >= scores.get("rant", 0.0) and (scores.get("case") or mode == "reactive")
            kind = "case" if concrete or fraud else "rant"
            add(kind, strength, f"model: complaint p={p_complaint:.2f} (>= {c_threshold:.2f})")
        elif praise_story:
            for kind in ("case", "rant"):
                if scores.get(kind):
                    scores[kind] *= DAMPING
            notes.append(f"model: a complaint (p={p_complaint:.2f}) told as praise (positive p={p_positive:.2f})")
        else:
            # Terms still count when the model is unsure (two of them make the type), far less when it is
            # sure it is no complaint. In very short posts ("WaveBox doesn't work") the model has too
            # little to read, so there the terms decide alone.
            if len(text.split()) < SHORT_POST_WORDS:
                damping = 1.0
            else:
                damping = DAMPING / 2 if p_complaint < c_threshold / 3 else DAMPING
            for kind in ("case", "rant"):
                if scores.get(kind):
                    scores[kind] *= damping
            notes.append(f"model: not a complaint (p={p_complaint:.2f} < {c_threshold:.2f})")
        if p_suggestion >= s_threshold:
            add("rfe", weight * (1.0 + 2.0 * (p_suggestion - s_threshold) / max(1e-6, 1 - s_threshold)),
                f"model: suggestion p={p_suggestion:.2f} (>= {s_threshold:.2f})")
        elif scores.get("rfe"):
            scores["rfe"] *= DAMPING
            notes.append(f"model: not a suggestion (p={p_suggestion:.2f} < {s_threshold:.2f})")
        if (p_complaint < c_threshold or praise_story) and p_positive >= 0.6:
            add("rave", weight * (0.5 + p_positive - 0.6) if "rave" in scores else weight * (p_positive - 0.6),
                f"model: positive p={p_positive:.2f}")
        if scores.get("rave") and p_negative >= 0.5:
            scores["rave"] *= DAMPING
            notes.append("praise words in a negative post (sarcasm?) count less")
        elif scores.get("rave") and p_complaint >= c_threshold and not praise_story:
            # "Great job! 3 power outages in 3 months": praise words in what the model reads as a complaint
            scores["rave"] *= DAMPING
            notes.append("praise words in a complaint (sarcasm?) count less")

    def _weigh_question(self, model: "TextScores", question: "QuestionCue", terms: dict[str, list[str]],
                        scores: dict[str, float], notes: list[str], add, covered: bool, lang: str,
                        mode: str) -> bool:
        """Fold the model's question head, the '?' cue and the query terms into the query score.

        A query is what the question head, the query terms and the '?' say together, unless the
        question is a prospect's (lead terms: a lead), a help request (case terms, with the complaint
        head or twice over: a case) or a rant's ("?" beside rant terms in a complaint: rhetorical). A
        model without a question head (threshold above 1) leaves the '?' and the terms to decide.
        True when the head read an information-seeking question that nothing else claims."""
        threshold = self.model.question_threshold
        complaint = model.complaint >= self.model.complaint_threshold
        sure_complaint = model.complaint >= (1.0 + self.model.complaint_threshold) / 2
        plain_question = question.sincere and not scores.get("case") and not scores.get("lead") and not complaint
        head_languages = (getattr(self.model, "meta", None) or {}).get("question_languages") or QUESTION_HEAD_LANGUAGES
        if threshold > 1.0 or lang not in head_languages:
            # no question head, or one that never read this language: the '?' and the terms decide
            if plain_question:
                add("query", 0.5, "asks a question")
            return False
        p_question = model.question
        if p_question < threshold:
            if scores.get("query"):
                scores["query"] *= DAMPING
            notes.append(f"model: not a question (p={p_question:.2f} < {threshold:.2f})")
            if plain_question and mode == "reactive":
                # the head's threshold assumes general traffic, where few posts are questions; a question
                # asked of the brand itself is the query the care team is there to answer
                add("query", 0.5, "asks the brand a question")
            return False
        said = f"model: question p={p_question:.2f} (>= {threshold:.2f})"
        case_terms, lead_terms = len(terms.get("case", ())), len(terms.get("lead", ()))
        if question.rhetorical:
            notes.append(f"{said}, but a rhetorical one")
        elif lead_terms:
            notes.append(f"{said}, a prospect's question")
        elif sure_complaint or case_terms >= 2 or (case_terms and complaint):
            # a real-time help request or a clear complaint phrased as a question ("why is my parcel late
            # again?") is a case or a rant to work, not a query: the complaint head and the terms decide which.
            # Where the complaint head only leans (below halfway from its threshold to 1), the question wins.
            notes.append(f"{said}, a help request" if case_terms else f"{said}, a complaint asked as a question")
        else:
            weight = 1.0 if covered else 0.5
            add("query", weight * (1.0 + 2.0 * (p_question - threshold) / max(1e-6, 1 - threshold)), said)
            if question.asks:
                add("query", 0.5, "asks a question")
            return True
        return False

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
