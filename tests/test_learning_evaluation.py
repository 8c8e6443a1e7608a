"""The metrics in core/engine/evaluation.py: their definitions, and the labelled-row formats evaluate reads."""
import pytest

from socialcrm.core.engine.evaluation import f1_at_prior, f1_binary, labels_of, language_of, macro_recall, score, task_of


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


def test_tweet_acts_rows_give_question_from_the_flag_or_the_act_and_their_suggestion_as_advice():
    row = {"text": "x", "tweet_act": "suggestion", "question": False, "suggestion": True}
    assert labels_of(row) == {"question": False, "advice": True}  # never the suggestion-mining task
    assert labels_of({"text": "x", "tweet_act": "question"}) == {"question": True, "advice": False}
    assert labels_of({"text": "x", "question": True}) == {"question": True}
    assert labels_of({"text": "x", "suggestion": True}) == {"suggestion": True}  # SemEval's shape


def test_question_f1_counts_query_strictly_and_query_or_case_leniently():
    gold = [True, True, True, False, False]
    pred = ["query", "case", "rant", "query", "case"]
    result = score("question", gold, pred)
    assert result.metrics["precision"] == 0.5 and result.metrics["recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert result.metrics["f1"] == pytest.approx(0.4)
    assert result.metrics["precision_lenient"] == 0.5 and result.metrics["recall_lenient"] == pytest.approx(2 / 3,
                                                                                                            abs=1e-4)
    assert result.confusion == [[1, 1], [2, 1]]
    assert "advice" in score("advice", [True], [True]).note


def test_sentiment_per_language_and_the_unweighted_mean_over_languages():
    gold = ["negative", "positive", "neutral", "negative", "positive", "neutral", "neutral", "neutral"]
    pred = ["negative", "positive", "neutral", "neutral", "neutral", "neutral", "neutral", "neutral"]
    langs = ["pt", "pt", "pt", "de", "de", "de", "de", "de"]
    result = score("sentiment", gold, pred, langs)
    assert result.per_language["pt"]["macro_recall"] == 1.0 and result.per_language["pt"]["n"] == 3
    assert result.per_language["de"]["macro_recall"] == pytest.approx(1 / 3, abs=1e-4)
    # each language counts once: (1 + 1/3) / 2, not the row-weighted overall figure
    assert result.metrics["language_mean_macro_recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert result.metrics["language_min_macro_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert result.metrics["macro_recall"] == pytest.approx((0.5 + 1 + 0.5) / 3, abs=1e-4)
    assert result.per_language["de"]["macro_f1"] == pytest.approx(0.75 / 3, abs=1e-4)  # neutral F1 2*3/(2*3+2), others 0
    assert score("sentiment", gold, pred).per_language == {}
    assert "language_mean_macro_recall" not in score("sentiment", gold, pred).metrics


@pytest.mark.parametrize("row, message", [
    ({"tweet_act": "rant"}, "tweet_act 'rant' is not one of statement"),
    ({"question": "maybe"}, "question must be true or false, not 'maybe'"),
])
def test_tweet_act_labels_it_cannot_score_are_named(row, message):
    with pytest.raises(ValueError, match=message):
        labels_of(row)


def test_a_lang_that_is_not_a_code_is_named():
    assert language_of({"lang": "pt-BR"}) == "pt" and language_of({}) is None
    with pytest.raises(ValueError, match="lang must be a language code"):
        language_of({"lang": ""})


def test_f1_at_another_prior_keeps_recall_and_false_positive_rate():
    confusion = [[80, 20], [10, 90]]  # tn fp / fn tp: recall 0.9, false-positive rate 0.2, half positive
    assert f1_at_prior(confusion, 0.5) == pytest.approx(2 * 90 / (2 * 90 + 20 + 10))  # the rows' own mix
    # one positive in ten: precision 0.09 / (0.09 + 0.18) = 1/3
    assert f1_at_prior(confusion, 0.1) == pytest.approx(2 * (1 / 3) * 0.9 / (1 / 3 + 0.9))
    with pytest.raises(ValueError, match="both classes need gold rows"):
        f1_at_prior([[0, 0], [1, 1]], 0.1)
