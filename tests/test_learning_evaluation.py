"""The metrics in core/engine/evaluation.py: their definitions, and the labelled-row formats evaluate reads."""
import pytest

from socialcrm.core.engine.evaluation import f1_binary, labels_of, macro_recall, score, task_of


def test_macro_recall_averages_the_labels_that_have_gold_rows():
    gold = ["negative", "negative", "neutral", "positive"]
    pred = ["negative", "neutral", "neutral", "neutral"]
    assert macro_recall(gold, pred) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # no neutral gold rows: neutral's recall is undefined and left out, not counted as 0
    assert macro_recall(["negative", "positive"], ["negative", "neutral"]) == pytest.approx(0.5)
    assert macro_recall([], []) == 0.0


def test_sentiment_scores_report_recall_only_for_labels_with_gold_rows():
    result = score("sentiment", ["negative", "positive"], ["negative", "positive"])
    assert result.metrics["macro_recall"] == 1.0
    assert "recall_neutral" not in result.metrics and result.metrics["recall_positive"] == 1.0


def test_f1_binary_counts_truthy_labels():
    assert f1_binary([True, True, False, False], [True, False, True, False]) == pytest.approx(0.5)
    assert f1_binary([1, 0], [1, 0]) == 1.0
    assert f1_binary([False], [False]) == 0.0


def test_type_scores_accuracy_per_type_and_confusion():
    gold = ["case", "case", "rant", "rfe"]
    pred = ["case", "rant", "rant", "spam"]
    result = score("type", gold, pred)
    assert result.labels == ["case", "rant", "rfe", "spam"]  # record-type order, types seen in gold or predicted
    assert result.metrics["accuracy"] == 0.5
    assert result.per_label["case"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert result.per_label["rant"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert result.per_label["spam"]["support"] == 0 and result.per_label["spam"]["precision"] == 0.0
    assert result.metrics["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0 + 0) / 4, abs=1e-4)
    assert result.confusion == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert result.as_dict()["per_label"]["case"]["support"] == 2


def test_labels_come_from_the_top_level_or_a_label_object():
    assert labels_of({"text": "x", "sentiment": "positive"}) == {"sentiment": "positive"}
    assert labels_of({"text": "x", "label": {"type": "rfe", "sentiment": "neutral", "fraud": False}}) == \
        {"type": "rfe", "sentiment": "neutral"}
    assert labels_of({"text": "x", "complaint": 1}) == {"complaint": True}
    assert labels_of({"text": "x"}) == {}
    assert task_of({"text": "x", "label": {"type": "case"}}) == "type"
    with pytest.raises(ValueError, match="no label field"):
        task_of({"text": "x"})


@pytest.mark.parametrize("row, message", [
    ({"label": {"type": "complaint"}}, "label.type 'complaint' is not one of case"),
    ({"sentiment": "happy"}, "sentiment 'happy' is not one of negative"),
    ({"suggestion": "yes"}, "suggestion must be true or false"),
])
def test_labels_it_cannot_score_are_named(row, message):
    with pytest.raises(ValueError, match=message):
        labels_of(row)
