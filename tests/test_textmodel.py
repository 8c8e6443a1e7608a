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
#: Suggestion F1 on val with its rows reweighted to the 10% suggestions the threshold assumes (val itself is
#: 50/50): measured 0.473 with the committed artefact, 0.415 with the one before the prior-aware threshold.
FLOOR_SUGGESTION_F1_AT_10_PERCENT = 0.45
#: xlmt val macro-recall: measured mean 0.5625 (chance 0.333); every language but Hindi above 0.54.
FLOOR_MULTILINGUAL_MEAN = 0.55
FLOOR_MULTILINGUAL_LANGUAGE = 0.50  # Hindi (romanised, code-mixed) is 0.346: the model card's known limit
AIRLINE_FEEDBACK_GAIN = 0.005  # measured: 0.771 -> 0.779 (+0.008) with the committed artefact


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
        assert 0.0 <= s.complaint <= 1.0 and 0.0 <= s.suggestion <= 1.0 and 0.0 <= s.question <= 1.0
        assert len(s.evidence) <= 5
        for name, weight in s.evidence:
            assert isinstance(name, str) and name and weight > 0
    assert model.score([]) == []
    assert 0.0 < model.complaint_threshold < 1.0 and 0.0 < model.suggestion_threshold < 1.0
    assert 0.0 < model.question_threshold < 1.0 and model.question_head


def test_question_head_fires_on_questions_not_statements(model):
    questions = ["does anyone know when the new season starts?", "@user what time does the store open tomorrow?",
                 "how do I reset my password?"]
    statements = ["the new season starts tomorrow.", "@user the store opens at nine tomorrow",
                  "I reset my password and it works now", "what a day it has been."]
    asked = model.score(questions)
    told = model.score(statements)
    assert all(s.question >= model.question_threshold for s in asked), [s.question for s in asked]
    assert all(s.question < model.question_threshold for s in told), [s.question for s in told]


def test_languages_in_meta(model):
    assert model.languages == ("en", "ar", "de", "es", "fr", "hi", "it", "pt")
    per_language = model.meta["sentiment_rows_per_language"]
    assert set(per_language) == set(model.languages) and min(per_language.values()) > 1500


def test_a_five_column_artefact_from_before_the_question_head_loads(model, tmp_path):
    """A file in the old layout (5 output columns, 16 dense features, no question_threshold) loads: its
    question is 0.0 for every text, the missing dense features weigh nothing, and it saves back as it was."""
    import numpy as np

    from socialcrm.core.engine.learning.textmodel.features import DENSE_NAMES

    def enc(text):
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    meta = {"format_version": 1, "labels": list(SENTIMENT_LABELS), "dense": list(DENSE_NAMES[:16]),
            "columns": list(SENTIMENT_LABELS) + ["complaint", "suggestion"], "complaint_threshold": 0.5,
            "suggestion_threshold": 0.4, "char_range": list(model.char_range), "info": {}}
    old = tmp_path / "old.npz"
    np.savez_compressed(old, meta=enc(json.dumps(meta)), uni=enc("\n".join(model.uni)), bi=enc("\n".join(model.bi)),
                        chars=enc("\n".join(model.chars)), W_uni=model.W_uni[:, :5].astype(np.float16),
                        W_bi=model.W_bi[:, :5].astype(np.float16), W_char=model.W_char[:, :5].astype(np.float16),
                        W_dense=model.W_dense[:16, :5].astype(np.float16), bias=model.bias[:5].astype(np.float16))
    loaded = TextModel.load(old)
    assert not loaded.question_head and loaded.question_threshold > 1.0
    texts = ["is the store open on sunday?", "worst service ever", "please add dark mode"]
    dense = model.W_dense.copy()
    dense[16:] = 0.0
    same = TextModel(model.uni, model.W_uni, model.bi, model.W_bi, model.chars, model.W_char, dense, model.bias,
                     char_range=model.char_range)
    for got, want in zip(loaded.score(texts), same.score(texts)):
        assert got.question == 0.0
        assert got.sentiment == pytest.approx(want.sentiment, abs=1e-6)
        assert got.complaint == pytest.approx(want.complaint, abs=1e-6)
    loaded.save(tmp_path / "again.npz")
    with np.load(tmp_path / "again.npz") as z:
        assert z["W_uni"].shape[1] == 5 and z["bias"].shape == (5,)
    assert TextModel.load(tmp_path / "again.npz").score(texts) == loaded.score(texts)
    # fine-tuning such a model keeps it without a question head
    tuned = fine_tune(loaded, [{"text": t, "question": True} for t in texts] * 2)
    assert not tuned.question_head and all(s.question == 0.0 for s in tuned.score(texts))


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
        assert a.question == pytest.approx(b.question, abs=1e-6)


def test_save_load_round_trip(model, tmp_path):
    texts = ["I love this, thank you!", "worst service ever, my internet is down again", "please add dark mode"]
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "textmodel.npz").exists()
    loaded = TextModel.load(tmp_path / "m")
    assert loaded.complaint_threshold == model.complaint_threshold
    assert loaded.suggestion_threshold == model.suggestion_threshold
    assert loaded.question_threshold == model.question_threshold
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
        assert after.question == pytest.approx(before.question, abs=1e-6)
    assert tuned.score(probe)[0].complaint > model.score(probe)[0].complaint
    # question corrections move the question head
    asked = fine_tune(model, [{"text": f"zorbly grindle {n}", "question": True} for n in range(6)]
                      + [{"text": f"sprocket widget {n}", "question": False} for n in range(6)])
    assert asked.score(["zorbly grindle"])[0].question > model.score(["zorbly grindle"])[0].question
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


def test_suggestion_validation_floor_at_the_deployment_prior(model, shared_datasets):
    import numpy as np

    from socialcrm.core.engine.learning.textmodel.training import prior_weights, weighted_f1

    rows = _read(shared_datasets / "semeval2019_task9_suggestions" / "val.jsonl")
    scores = model.score([r["text"] for r in rows], evidence=False)
    gold = np.array([r["suggestion"] for r in rows])
    predicted = np.array([s.suggestion >= model.suggestion_threshold for s in scores])
    assert model.meta["options"]["prior_suggestion"] == 0.10
    assert weighted_f1(gold, predicted, prior_weights(gold, 0.10)) >= FLOOR_SUGGESTION_F1_AT_10_PERCENT


def test_multilingual_sentiment_validation_floor(model, shared_datasets):
    rows = _read(shared_datasets / "xlmt_sentiment" / "val.jsonl")
    by_language = {}
    for lang in model.languages[1:]:
        part = [r for r in rows if r["lang"] == lang]
        by_language[lang] = macro_recall([r["sentiment"] for r in part], model.predict_sentiment([r["text"] for r in part]))
    assert sum(by_language.values()) / len(by_language) >= FLOOR_MULTILINGUAL_MEAN, by_language
    assert all(v >= FLOOR_MULTILINGUAL_LANGUAGE for lang, v in by_language.items() if lang != "hi"), by_language


def test_feedback_loop_airline(model, shared_datasets):
    """300 airline corrections raise airline macro-recall on 1,900 other airline rows, and cost at most 1 point
    of TweetEval val macro-recall. Corrections and scored rows both come from the airline file's held-back
    fifth (``holdout_fold``), which trains nothing in the base model, so the corrections are new to it."""
    from socialcrm.core.engine.learning.textmodel import load_datasets

    data = load_datasets(shared_datasets)
    held_back = sorted(data["airline_heldback"], key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
    assert len(held_back) > 2_250 and all(holdout_fold(r["id"]) for r in held_back)
    assert not {r["id"] for r in held_back} & {r["id"] for r in data["airline_train"]}
    scored = held_back[-1900:]
    # people's corrections are confident: the first 300 held-back rows (hash order) the annotators agreed on
    corrections = [r for r in held_back[:-1900] if r["sentiment_confidence"] >= 0.99][:300]
    assert len(corrections) == 300 and not {r["id"] for r in corrections} & {r["id"] for r in scored}
    tweeteval = data["sentiment_val"]

    def mr(m, rows):
        return macro_recall([r["sentiment"] for r in rows], m.predict_sentiment([r["text"] for r in rows]))

    tuned = fine_tune(model, [{"text": r["text"], "sentiment": r["sentiment"]} for r in corrections])
    airline_before, airline_after = mr(model, scored), mr(tuned, scored)
    tweeteval_before, tweeteval_after = mr(model, tweeteval), mr(tuned, tweeteval)
    print(f"airline {airline_before:.4f} -> {airline_after:.4f}; tweeteval {tweeteval_before:.4f} -> {tweeteval_after:.4f}")
    assert airline_after >= airline_before + AIRLINE_FEEDBACK_GAIN
    assert tweeteval_after >= tweeteval_before - 0.01
