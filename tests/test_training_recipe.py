"""Training from scratch (textmodel.train, the ``train`` extra) on the bundled labelled sample: it learns,
it is deterministic, and what it saves loads back to the same scores. The shared datasets are not needed;
the committed artefact's own figures are in test_textmodel.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialcrm.core.engine.learning.textmodel import TextModel, f1_binary, macro_recall, train

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "mentions.jsonl"


def labelled_rows() -> dict[str, list[dict]]:
    """The sample's labels as the three heads' rows: complaint = case or rant, suggestion = rfe."""
    rows = [json.loads(line) for line in SAMPLE.open(encoding="utf-8") if line.strip()]
    rows = [r for r in rows if r.get("label") and r.get("lang") == "en"]
    return {
        "sentiment": [{"text": r["text"], "sentiment": r["label"]["sentiment"]} for r in rows],
        "complaint": [{"text": r["text"], "complaint": r["label"]["type"] in ("case", "rant")} for r in rows],
        "suggestion": [{"text": r["text"], "suggestion": r["label"]["type"] == "rfe"} for r in rows],
    }


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict]]:
    return labelled_rows()


@pytest.fixture(scope="module")
def trained(rows) -> TextModel:
    # the sample is small: keep every n-gram seen once, and no pruning, so the test sees the heads learn
    return train(rows["sentiment"], rows["complaint"], rows["suggestion"], min_df_uni=1, min_df_bi=1,
                 min_df_char=1, prune_uni=0, prune_bi=0, prune_char=0)


def test_each_head_learns_its_rows(trained, rows):
    texts = [r["text"] for r in rows["sentiment"]]
    scores = trained.score(texts, evidence=False)
    gold = [r["sentiment"] for r in rows["sentiment"]]
    assert macro_recall(gold, [max(s.sentiment, key=s.sentiment.get) for s in scores]) > 0.9
    complaint = f1_binary([r["complaint"] for r in rows["complaint"]],
                          [s.complaint >= trained.complaint_threshold for s in scores])
    suggestion = f1_binary([r["suggestion"] for r in rows["suggestion"]],
                           [s.suggestion >= trained.suggestion_threshold for s in scores])
    assert complaint > 0.9 and suggestion > 0.9
    assert 0.05 <= trained.complaint_threshold <= 0.95 and 0.05 <= trained.suggestion_threshold <= 0.95


def test_training_is_deterministic_and_saves_what_it_scores(trained, rows, tmp_path):
    again = train(rows["sentiment"], rows["complaint"], rows["suggestion"], min_df_uni=1, min_df_bi=1,
                  min_df_char=1, prune_uni=0, prune_bi=0, prune_char=0)
    trained.save(tmp_path / "a.npz")
    again.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = TextModel.load(tmp_path / "a.npz")
    texts = [r["text"] for r in rows["sentiment"][:50]]
    for x, y in zip(trained.score(texts, evidence=False), loaded.score(texts, evidence=False)):
        assert x.sentiment == pytest.approx(y.sentiment, abs=1e-6)
        assert x.complaint == pytest.approx(y.complaint, abs=1e-6)


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
