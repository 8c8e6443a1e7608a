"""The text model (core/engine/learning/textmodel/): behaviour, the committed artefact's validation
figures, and the feedback loop (fine-tuning on corrections)."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from socialcrm.core.engine.learning.textmodel import (
    SENTIMENT_LABELS,
    TextModel,
    TextScores,
    f1_binary,
    fine_tune,
    holdout_fold,
    macro_recall,
)


# Validation targets (see core/engine/learning/MODEL_CARD.md)
TARGET_SENTIMENT_MACRO_RECALL = 0.66
FLOOR_COMPLAINT_F1 = 0.77  # what the committed artefact must keep; the 0.80 target is measured in bench/learning.py
TARGET_SUGGESTION_F1 = 0.75


@pytest.fixture(scope="module")
def model() -> TextModel:
    return TextModel.default()


def label(s: TextScores) -> str:
    return max(s.sentiment, key=s.sentiment.get)


# ------------------------------------------------------------------ behaviour (no shared data)


def test_output_shape_and_probabilities(model):
    texts = ["I love this, thank you!", "", "meh", "@brand http://x.y/z #tag 🙂 !!!", "a " * 500]
    scores = model.score(texts)
    assert len(scores) == len(texts)
    for s in scores:
        assert isinstance(s, TextScores)
        assert set(s.sentiment) == set(SENTIMENT_LABELS)
        assert math.isclose(sum(s.sentiment.values()), 1.0, abs_tol=1e-6)
        assert all(0.0 <= p <= 1.0 for p in s.sentiment.values())
        assert 0.0 <= s.complaint <= 1.0 and 0.0 <= s.suggestion <= 1.0
        assert len(s.evidence) <= 5
        for name, weight in s.evidence:
            assert isinstance(name, str) and name and weight > 0
    assert model.score([]) == []
    assert 0.0 < model.complaint_threshold < 1.0 and 0.0 < model.suggestion_threshold < 1.0


def test_default_is_cached(model):
    assert TextModel.default() is model


def test_obvious_texts(model):
    pos, neg, sugg = model.score(
        [
            "I love this, thank you!",
            "worst service ever, my internet is down again",
            "please add dark mode to the app",
        ]
    )
    assert label(pos) == "positive"
    assert label(neg) == "negative"
    assert neg.complaint >= model.complaint_threshold
    assert pos.complaint < model.complaint_threshold
    assert sugg.suggestion >= model.suggestion_threshold
    assert neg.suggestion < sugg.suggestion
    # evidence names the words behind the label
    assert any("worst" in name for name, _ in neg.evidence)
    assert any("love" in name or "thank" in name for name, _ in pos.evidence)


def test_lexicon_passed_in_equals_computed(model):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts = ["Great job, really happy with it :)", "This is not good at all.", "When do you open?"]
    analyser = SentimentIntensityAnalyzer()
    given = model.score(texts, [analyser.polarity_scores(t) for t in texts])
    computed = model.score(texts)
    assert [g.sentiment for g in given] == [c.sentiment for c in computed]
    with pytest.raises(ValueError):
        model.score(texts, [{}])


def test_batch_independent(model):
    texts = ["my order never arrived and nobody answers", "thanks for the quick fix!", "new store opens friday"]
    together = model.score(texts)
    alone = [model.score([t])[0] for t in texts]
    for a, b in zip(together, alone):
        for k in SENTIMENT_LABELS:
            assert a.sentiment[k] == pytest.approx(b.sentiment[k], abs=1e-6)
        assert a.complaint == pytest.approx(b.complaint, abs=1e-6)


def test_save_load_round_trip(model, tmp_path):
    texts = ["I love this, thank you!", "worst service ever, my internet is down again", "please add dark mode"]
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "textmodel.npz").exists()
    loaded = TextModel.load(tmp_path / "m")
    assert loaded.complaint_threshold == model.complaint_threshold
    assert loaded.suggestion_threshold == model.suggestion_threshold
    assert loaded.score(texts) == model.score(texts)
    # a second round trip is byte-for-byte stable in what it scores
    loaded.save(tmp_path / "m2.npz")
    assert TextModel.load(tmp_path / "m2.npz").score(texts) == model.score(texts)


def test_fine_tune_changes_predictions_on_its_domain(model, tmp_path):
    # a made-up domain: "zorbly" / "grindle" mean nothing to the base model
    bad = [f"the zorbly widget {w} grindled again" for w in ("red", "blue", "green", "old", "new", "big", "small", "tall")]
    good = [f"the {w} sprocket works fine" for w in ("red", "blue", "green", "old", "new", "big", "small", "tall")]
    rows = [{"text": t, "sentiment": "negative", "complaint": True} for t in bad]
    rows += [{"text": t, "sentiment": "neutral", "complaint": False} for t in good]
    probe = ["my zorbly grindled"]
    before = model.score(probe)[0]
    tuned = fine_tune(model, rows * 5)
    after = tuned.score(probe)[0]
    assert after.sentiment["negative"] > before.sentiment["negative"] + 0.1
    assert after.complaint > before.complaint
    # the base model is untouched, and the tuned model survives a save/load round trip
    assert model.score(probe)[0] == before
    tuned.save(tmp_path / "tuned")
    assert TextModel.load(tmp_path / "tuned").score(probe) == tuned.score(probe)




def test_fine_tune_moves_only_the_heads_its_rows_label(model):
    rows = [{"text": f"the zorbly widget grindled again {n}", "complaint": True} for n in range(6)]
    rows += [{"text": f"the sprocket works fine {n}", "complaint": False} for n in range(6)]
    probe = ["my zorbly grindled", "the sprocket works"]
    tuned = fine_tune(model, rows)
    for before, after in zip(model.score(probe), tuned.score(probe)):
        assert after.sentiment == pytest.approx(before.sentiment, abs=1e-6)
        assert after.suggestion == pytest.approx(before.suggestion, abs=1e-6)
    assert tuned.score(probe)[0].complaint > model.score(probe)[0].complaint
    # rows without any label change nothing
    unlabelled = fine_tune(model, [{"text": "hello there"}, {"text": "hello there"}])
    assert unlabelled.score(probe) == model.score(probe)

def test_inference_char_grams_are_scikit_learns_char_wb_grams(model):
    """Inference keeps a hand-written char n-gram path (no scikit-learn at run time, and it is faster);
    it must give exactly what training's scikit-learn char_wb analyser gives, grams, order and repeats."""
    pytest.importorskip("sklearn")
    from socialcrm.core.engine.learning.textmodel.features import (char_grams, char_wb_analyser, normalise,
                                                                   tokenise)

    sample = Path(__file__).resolve().parents[1] / "samples" / "mentions.jsonl"
    texts = [json.loads(line)["text"] for line in sample.open(encoding="utf-8")]
    texts += ["a I ok #tag ~not don't @brand http://x.y 0000 aaaa naïve İstanbul ß _x_ 😀 !!! ... é", "  "]
    tokens = {t for text in texts for t in tokenise(normalise(text))[0]} | {"~no", "~", "#", "_", "x"}
    analyser = char_wb_analyser(model.char_range)
    for token in sorted(tokens):
        assert char_grams(token, *model.char_range) == analyser(token), token
    assert char_grams("ok", 2, 5) == [" o", "ok", "k ", " ok", "ok ", " ok "]

# ------------------------------------------------------------------ figures on the shared datasets


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_sentiment_validation_target(model, shared_datasets):
    rows = _read(shared_datasets / "tweeteval_sentiment" / "val.jsonl")
    pred = model.predict_sentiment([r["text"] for r in rows])
    assert macro_recall([r["sentiment"] for r in rows], pred) >= TARGET_SENTIMENT_MACRO_RECALL


def _complaint_f1(model, datasets: Path) -> float:
    rows = [r for r in _read(datasets / "complaints" / "train.jsonl") if holdout_fold(r["id"])]
    assert len(rows) == 548
    scores = model.score([r["text"] for r in rows], evidence=False)
    return f1_binary([r["complaint"] for r in rows], [s.complaint >= model.complaint_threshold for s in scores])


def test_complaint_validation_floor(model, shared_datasets):
    assert _complaint_f1(model, shared_datasets) >= FLOOR_COMPLAINT_F1


def test_suggestion_validation_target(model, shared_datasets):
    rows = _read(shared_datasets / "semeval2019_task9_suggestions" / "val.jsonl")
    scores = model.score([r["text"] for r in rows], evidence=False)
    f1 = f1_binary([r["suggestion"] for r in rows], [s.suggestion >= model.suggestion_threshold for s in scores])
    assert f1 >= TARGET_SUGGESTION_F1


def test_feedback_loop_airline(model, shared_datasets):
    """300 airline corrections raise airline macro-recall on 2,000 other airline rows by a clear
    margin, and cost at most 1 point of TweetEval val macro-recall."""
    d = shared_datasets
    air = sorted(_read(d / "airline_sentiment" / "train.jsonl"), key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
    held = air[-2000:]
    # people's corrections are confident: take the first 300 rows (hash order) the annotators agreed on
    corrections = [r for r in air[:-2000] if r["sentiment_confidence"] >= 0.99][:300]
    assert len(corrections) == 300 and not {r["id"] for r in corrections} & {r["id"] for r in held}
    tweeteval = _read(d / "tweeteval_sentiment" / "val.jsonl")

    def mr(m, rows):
        return macro_recall([r["sentiment"] for r in rows], m.predict_sentiment([r["text"] for r in rows]))

    tuned = fine_tune(model, [{"text": r["text"], "sentiment": r["sentiment"]} for r in corrections])
    airline_before, airline_after = mr(model, held), mr(tuned, held)
    tweeteval_before, tweeteval_after = mr(model, tweeteval), mr(tuned, tweeteval)
    print(f"airline {airline_before:.4f} -> {airline_after:.4f}; tweeteval {tweeteval_before:.4f} -> {tweeteval_after:.4f}")
    assert airline_after >= airline_before + 0.0075  # measured: 0.697 -> 0.708 (L-BFGS; 0.707 with the earlier hand-written optimiser)
    assert tweeteval_after >= tweeteval_before - 0.01
