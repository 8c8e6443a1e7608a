import json
from pathlib import Path

from socialcrm.core.engine.learning.language import detect


def test_detects_the_languages_of_the_bundled_samples():
    samples = Path(__file__).resolve().parents[1] / "samples" / "mentions.jsonl"
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    long_enough = [r for r in rows if len(r["text"]) >= 40]
    right = sum(detect(r["text"])[0] == r["lang"] for r in long_enough)
    assert right / len(long_enough) >= 0.95
    assert {r["lang"] for r in long_enough} >= {"en", "es", "fr", "de", "pt", "it", "nl"}


def test_short_or_unclear_text_is_left_unknown():
    assert detect("ok")[0] is None
    lang, probability = detect("el router no funciona desde ayer por la tarde", languages=("en", "es", "fr"))
    assert lang == "es" and probability > 0.9
