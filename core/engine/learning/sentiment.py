"""Lexicon sentiment with VADER, which was built for social-media text (emoji, caps, "!!!", slang)."""
from __future__ import annotations

from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from socialcrm.core.sdk.model import Sentiment

# VADER's authors' recommended thresholds on the compound score.
POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05


@lru_cache(maxsize=1)
def analyzer() -> SentimentIntensityAnalyzer:
    """One shared analyzer: building it reads the lexicon from disk."""
    return SentimentIntensityAnalyzer()


def lexicon_scores(text: str) -> dict[str, float]:
    """VADER's neg/neu/pos/compound scores for one text."""
    return analyzer().polarity_scores(text)


def label_for(compound: float) -> str:
    """positive, neutral or negative from a compound score in [-1, 1]."""
    if compound >= POSITIVE_AT:
        return "positive"
    if compound <= NEGATIVE_AT:
        return "negative"
    return "neutral"


def sentiment_from_lexicon(scores: dict[str, float]) -> Sentiment:
    """A ``Sentiment`` from VADER's scores."""
    compound = scores["compound"]
    return Sentiment(label_for(compound), round(compound, 4))
