"""Language detection for mentions whose source did not say, with py3langid (offline, model bundled)."""
from __future__ import annotations

import threading
from functools import lru_cache

from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

#: Below this probability the guess is not trusted and the language is left unknown.
MIN_CONFIDENCE = 0.3
#: Shorter texts carry too little signal to guess from.
MIN_LENGTH = 12

_lock = threading.Lock()


@lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...] | None) -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
    if languages:
        identifier.set_languages(list(languages))
    return identifier


def detect(text: str, languages: tuple[str, ...] | None = None) -> tuple[str | None, float]:
    """The ISO 639-1 code of ``text``'s language and the probability behind it, or (None, p) when unsure.

    ``languages`` restricts the guess to the languages a brand actually hears, which makes short posts far
    more reliable.
    """
    if len(text.strip()) < MIN_LENGTH:
        return None, 0.0
    with _lock:  # the identifier keeps per-call state
        lang, probability = _identifier(languages).classify(text)
    probability = float(probability)
    return (lang if probability >= MIN_CONFIDENCE else None), probability
