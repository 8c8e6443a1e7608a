"""Training from scratch (textmodel.train, the ``train`` extra) on the bundled labelled sample: it learns,
it is deterministic, and what it saves loads back to the same scores. The shared datasets are not needed;
the committed artefact's own figures are in test_textmodel.py."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import numpy as np

from socialcrm.core.engine.learning.textmodel import TextModel, f1_binary, macro_recall, train
from socialcrm.core.engine.learning.textmodel.training import best_f1_threshold, group_balanced_weights, prior_weights

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "mentions.jsonl"


def labelled_rows() -> dict[str, list[dict]]:
    """The sample's labels as the four heads' rows: complaint = case or rant, suggestion = rfe, question = query."""
    rows = [json.loads(line) for line in SAMPLE.open(encoding="utf-8") if line.strip()]
    rows = [r for r in rows if r.get("label") and r.get("lang") == "en"]
    return {
        "sentiment": [{"text": r["text"], "sentiment": r["label"]["sentiment"]} for r in rows],
        "complaint": [{"text": r["text"], "complaint": r["label"]["type"] in ("case", "rant")} for r in rows],
        "suggestion": [{"text": r["text"], "suggestion": r["label"]["type"] == "rfe"} for r in rows],
        "question": [{"text": r["text"], "question": r["label"]["type"] == "query"} for r in rows],
    }


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict]]:
    return labelled_rows()


@pytest.fixture(scope="module")
def trained(rows) -> TextModel:
    # the sample is small: keep every n-gram seen once, and no pruning, so the test sees the heads learn
    # the sample's own suggestion share as the prior: the test asks each head to fit the rows it has
    return train(rows["sentiment"], rows["complaint"], rows["suggestion"], question_rows=rows["question"],
                 min_df_uni=1, min_df_bi=1, min_df_char=1, prune_uni=0, prune_bi=0, prune_char=0,
                 prior_suggestion=None)


def test_each_head_learns_its_rows(trained, rows):
    texts = [r["text"] for r in rows["sentiment"]]
    scores = trained.score(texts, evidence=False)
    gold = [r["sentiment"] for r in rows["sentiment"]]
    assert macro_recall(gold, [max(s.sentiment, key=s.sentiment.get) for s in scores]) > 0.9
    complaint = f1_binary([r["complaint"] for r in rows["complaint"]],
                          [s.complaint >= trained.complaint_threshold for s in scores])
    suggestion = f1_binary([r["suggestion"] for r in rows["suggestion"]],
                           [s.suggestion >= trained.suggestion_threshold for s in scores])
    question = f1_binary([r["question"] for r in rows["question"]],
                         [s.question >= trained.question_threshold for s in scores])
    assert complaint > 0.9 and suggestion > 0.9 and question > 0.9
    assert 0.05 <= trained.complaint_threshold <= 0.95 and 0.05 <= trained.suggestion_threshold <= 0.95
    assert 0.05 <= trained.question_threshold <= 0.95 and trained.question_head
    # each threshold says which deployment prior it assumed (None in the options: the rows' own share)
    oof = trained.meta["thresholds_oof"]
    assert set(oof) == {"complaint", "suggestion", "question"}
    assert trained.meta["options"]["prior_suggestion"] is None
    for head in ("suggestion", "question"):
        share = sum(r[head] for r in rows[head]) / len(rows[head])
        assert oof[head]["prior"] == pytest.approx(share, abs=1e-4)


def test_without_question_rows_the_question_head_never_fires(rows):
    model = train(rows["sentiment"], rows["complaint"], rows["suggestion"], min_df_uni=1, min_df_bi=1,
                  min_df_char=1, prune_uni=0, prune_bi=0, prune_char=0)
    assert model.question_threshold > 1.0 and "question" in model.meta["untrained_heads"]
    assert all(s.question < model.question_threshold for s in model.score(["when do you open?", "is it down?"]))


def test_a_lower_deployment_prior_raises_the_threshold():
    """Rows with 50% positives, a score that separates them only partly: under a 10% prior false positives
    cost more, so the F1-optimal threshold moves up, and the reweighted F1 is the F1 of a 10% stream."""
    rng = np.random.RandomState(0)
    y = np.repeat([1, 0], 2000)
    p = np.clip(np.where(y == 1, rng.normal(0.65, 0.15, len(y)), rng.normal(0.35, 0.15, len(y))), 0, 1)
    f1_own, t_own = best_f1_threshold(y, p)
    f1_low, t_low = best_f1_threshold(y, p, prior=0.10)
    assert t_low > t_own + 0.05 and f1_low < f1_own
    # the same as thinning the negatives' counterpart: positives subsampled to 10% of the rows
    keep = np.concatenate([np.arange(222), np.arange(2000, 4000)])
    assert best_f1_threshold(y[keep], p[keep])[1] == pytest.approx(t_low, abs=0.06)
    w = prior_weights(y, 0.10)
    assert w[y == 1].sum() / w.sum() == pytest.approx(0.10)
    with pytest.raises(ValueError, match="prior"):
        prior_weights(y, 1.5)


def test_group_balanced_weights_balance_classes_within_groups_and_weigh_groups_by_power():
    y = np.array([0] * 90 + [1] * 10 + [0, 1, 2] * 10)
    groups = np.array(["big"] * 100 + ["small"] * 30)
    for power in (0.0, 0.5, 1.0):
        w = group_balanced_weights(y, groups, power)
        assert w.mean() == pytest.approx(1.0)
        big, small = groups == "big", groups == "small"
        # within a group, every class carries the same total
        assert w[big & (y == 0)].sum() == pytest.approx(w[big & (y == 1)].sum())
        assert w[small & (y == 2)].sum() == pytest.approx(w[small & (y == 0)].sum())
        assert w[big].sum() / w[small].sum() == pytest.approx((100 / 30) ** power)


def test_training_is_deterministic_and_saves_what_it_scores(trained, rows, tmp_path):
    again = train(rows["sentiment"], rows["complaint"], rows["suggestion"], question_rows=rows["question"],
                  min_df_uni=1, min_df_bi=1, min_df_char=1, prune_uni=0, prune_bi=0, prune_char=0,
                  prior_suggestion=None)
    trained.save(tmp_path / "a.npz")
    again.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = TextModel.load(tmp_path / "a.npz")
    texts = [r["text"] for r in rows["sentiment"][:50]]
    for x, y in zip(trained.score(texts, evidence=False), loaded.score(texts, evidence=False)):
        assert x.sentiment == pytest.approx(y.sentiment, abs=1e-6)
        assert x.complaint == pytest.approx(y.complaint, abs=1e-6)
        assert x.question == pytest.approx(y.question, abs=1e-6)
    assert loaded.question_threshold == trained.question_threshold


def test_auxiliary_complaint_rows_join_the_complaint_head_only(rows):
    """Distant complaint rows move the complaint head and leave the sentiment head exactly as it was."""
    options = dict(min_df_uni=1, min_df_bi=1, min_df_char=1, prune_uni=0, prune_bi=0, prune_char=0)
    aux = [{"text": f"@airline flight {n} delayed again, lost my bag", "complaint": True} for n in range(20)]
    aux += [{"text": f"@airline thanks for flight {n}, lovely crew", "complaint": False} for n in range(20)]
    plain = train(rows["sentiment"], rows["complaint"], rows["suggestion"], **options)
    helped = train(rows["sentiment"], rows["complaint"], rows["suggestion"], complaint_aux_rows=aux,
                   complaint_aux_weight=1.0, **options)
    assert helped.meta["rows"]["complaint_aux"] == 40
    probe = ["flight delayed again and they lost my bag"]
    assert helped.score(probe)[0].complaint > plain.score(probe)[0].complaint
    # the vocabulary grew with the auxiliary texts, but the sentiment head was fitted on the same rows
    assert helped.score(probe)[0].sentiment == pytest.approx(plain.score(probe)[0].sentiment, abs=0.05)


def test_unknown_options_are_named():
    with pytest.raises(TypeError, match="C_complain"):
        train([{"text": "a", "sentiment": "positive"}, {"text": "b", "sentiment": "negative"}], [], [], C_complain=2)


def test_train_default_never_trains_on_held_back_rows_and_excludes_from_every_role(shared_datasets, monkeypatch):
    """train_default's rows, captured before fitting: the held-back fifths of the airline and complaints
    files reach no head (nor the vocabulary); ``exclude`` removes a dataset's rows from every role it plays;
    the artefact's meta names its languages and rows per language."""
    from socialcrm.core.engine.learning.textmodel import holdout_fold, recipe

    captured = {}

    def fake_train(*args, **kwargs):
        captured["args"], captured["kwargs"] = args, kwargs
        return "model"

    monkeypatch.setattr(recipe, "train", fake_train)

    def texts_and_ids():
        rows = [r for part in captured["args"] for r in part]
        rows += list(captured["kwargs"]["complaint_aux_rows"]) + list(captured["kwargs"]["question_rows"])
        return {r["text"] for r in rows}, {r.get("id") for r in rows}

    assert recipe.train_default(shared_datasets) == "model"
    data = recipe.load_datasets(shared_datasets)
    texts, ids = texts_and_ids()
    held = data["airline_heldback"] + data["complaint_val"]
    assert held and all(holdout_fold(r["id"]) for r in held)
    assert not {r["id"] for r in held} & ids
    assert len(data["airline_heldback"]) + len(data["airline_train"]) == 11_525
    info = captured["kwargs"]["info"]
    assert info["languages"] == ["en", "ar", "de", "es", "fr", "hi", "it", "pt"]
    per_language = info["sentiment_rows_per_language"]
    assert sum(per_language.values()) == len(captured["args"][0]) and min(per_language.values()) > 1500
    assert len(captured["kwargs"]["sentiment_groups"]) == len(captured["args"][0])

    # leaving out a third of every dataset leaves it out of every role (sentiment, complaint aux, question ...)
    def exclude(folder, row):
        return int(hashlib.sha256(f"{folder}|{row['id']}".encode()).hexdigest(), 16) % 3 == 0

    recipe.train_default(shared_datasets, exclude=exclude)
    _, kept_ids = texts_and_ids()
    for folder in recipe.DATASET_FOLDERS.values():
        rows = recipe.read_jsonl(shared_datasets / folder / "train.jsonl")
        dropped = {r["id"] for r in rows if exclude(folder, r)}
        assert dropped and not dropped & kept_ids, folder


def test_labelled_files_may_carry_question_labels(tmp_path):
    from socialcrm.core.services.training import TrainingDataError, read_labelled

    good = tmp_path / "rows.jsonl"
    good.write_text('{"text": "when do you open?", "question": true}\n{"text": "we open at 9", "question": false}\n',
                    encoding="utf-8")
    assert [r["question"] for r in read_labelled(good)] == [True, False]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no label"}\n', encoding="utf-8")
    with pytest.raises(TrainingDataError, match="bad.jsonl line 1: .*question"):
        read_labelled(bad)


def test_binary_heads_stack_on_a_sentiment_fit_without_the_left_out_groups(rows):
    """With sentiment groups, the binary heads stack on a sentiment fit without ``stack_without_groups``
    (the airline rows, which are also the complaint head's distant rows): leaving a group out changes the
    complaint head, never the sentiment head."""
    options = dict(min_df_uni=1, min_df_bi=1, min_df_char=1, prune_uni=0, prune_bi=0, prune_char=0)
    groups = ["airline" if i % 2 else "tweeteval" for i in range(len(rows["sentiment"]))]
    left_out = train(rows["sentiment"], rows["complaint"], rows["suggestion"], sentiment_groups=groups, **options)
    kept = train(rows["sentiment"], rows["complaint"], rows["suggestion"], sentiment_groups=groups,
                 stack_without_groups=(), **options)
    assert left_out.meta["options"]["stack_without_groups"] == ["airline"]
    probe = ["my order never arrived and nobody answers", "thanks for the quick fix!"]
    for a, b in zip(left_out.score(probe), kept.score(probe)):
        assert a.sentiment == pytest.approx(b.sentiment, abs=1e-9)
    assert [a.complaint for a in left_out.score(probe)] != [b.complaint for b in kept.score(probe)]
