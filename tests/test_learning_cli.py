"""socialcrm classify, evaluate, train and feedback: the learning step on the command line."""
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from socialcrm.core.cli.main import main
from socialcrm.core.sdk.model import RECORD_TYPES
from socialcrm.core.store import Store

LINES = [
    {"id": "a1", "text": "@BrightwaveHelp my internet is down again, third outage this week"},
    {"id": "a2", "text": "Please add dark mode to the Brightwave app, it would be so much better at night",
     "author": {"handle": "nightowl", "followers": 120000}, "likes": 40},
    "{broken json",
    {"text": "no id here"},
    {"id": 7, "text": "thank you so much, the engineer was brilliant!", "lang": "en"},
]


def as_input(lines):
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"


def test_classify_writes_one_object_per_good_line_in_order_and_names_bad_lines():
    result = CliRunner().invoke(main, ["classify"], input=as_input(LINES))
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a1", "a2", "7"]
    assert out[0]["type"] == "case" and out[0]["sentiment"]["label"] == "negative"
    assert out[1]["type"] == "rfe" and out[1]["action"] == "log_request" and out[1]["influence"] > 50
    assert out[2]["type"] == "rave" and out[2]["sentiment"]["label"] == "positive"
    for o in out:
        assert -1 <= o["sentiment"]["score"] <= 1 and o["priority"] in ("P1", "P2", "P3", "P4") and o["reasons"]
    assert "error: line 3: not JSON" in result.stderr
    assert "error: line 4: id: Missing data for required field." in result.stderr


def test_classify_reads_and_writes_files_and_applies_a_config(tmp_path, write_config):
    (tmp_path / "in.jsonl").write_text(as_input([LINES[0]]))
    config = write_config()
    result = CliRunner().invoke(main, ["classify", "--input", str(tmp_path / "in.jsonl"), "--output",
                                       str(tmp_path / "out.jsonl"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert record["mode"] == "reactive" and record["route"] == ["desk"] and record["team"] == "care"


def test_classify_routes_as_the_pipeline_does_with_the_configs_do_not_engage_list(tmp_path, write_config,
                                                                                 base_config):
    config = write_config(base_config + '\n[privacy]\ndo_not_engage = ["input:@nightowl"]\n')
    lines = [LINES[0], {**LINES[0], "id": "a3", "author": "@NightOwl"}]
    result = CliRunner().invoke(main, ["classify", "--config", str(config)], input=as_input(lines))
    assert result.exit_code == 0, result.output
    free, held = [json.loads(line) for line in result.stdout.splitlines()]
    assert free["route"] == ["desk"] and held["type"] == "case" and held["route"] == []
    assert held["reasons"][-1].startswith("do-not-engage:")


def test_evaluate_prints_the_datasets_metrics_and_a_confusion_matrix(tmp_path):
    rows = [{"id": "1", "text": "I love it, thank you!", "sentiment": "positive"},
            {"id": "2", "text": "worst service ever, furious", "sentiment": "negative"},
            {"id": "3", "text": "the store opens at nine", "sentiment": "neutral"},
            {"id": "4", "text": "@Brightwave my bill is wrong again and nobody answers", "complaint": True},
            {"id": "5", "text": "please add an option to export my data", "suggestion": True},
            {"id": "6", "text": "what a lovely day", "suggestion": False}]
    (tmp_path / "labelled.jsonl").write_text(as_input(rows))
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "labelled.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["tasks"]) == {"sentiment", "complaint", "suggestion"}
    assert report["tasks"]["sentiment"]["metrics"]["macro_recall"] == 1.0
    assert report["tasks"]["complaint"]["confusion"] == [[0, 0], [0, 1]]
    assert report["tasks"]["suggestion"]["metrics"]["f1"] == 1.0
    table = CliRunner().invoke(main, ["evaluate", str(tmp_path / "labelled.jsonl")])
    assert "macro_recall 1.0000" in table.output and "gold \\ predicted" in table.output



SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "mentions.jsonl"


def test_evaluate_scores_type_and_sentiment_of_the_bundled_samples():
    result = CliRunner().invoke(main, ["evaluate", str(SAMPLES), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 395 and report["skipped"] == 0
    assert set(report["tasks"]) == {"sentiment", "type"}
    types = report["tasks"]["type"]
    assert types["labels"] == list(RECORD_TYPES)
    assert sum(map(sum, types["confusion"])) == 395
    assert {k: v["support"] for k, v in types["per_label"].items()} == \
        dict(Counter(json.loads(line)["label"]["type"] for line in SAMPLES.open(encoding="utf-8")))
    assert set(types["metrics"]) == {"accuracy", "macro_f1"}
    assert 0 < types["metrics"]["accuracy"] <= 1 and set(types["per_label"]["case"]) == {"precision", "recall", "f1",
                                                                                        "support"}
    assert sum(map(sum, report["tasks"]["sentiment"]["confusion"])) == 395
    table = CliRunner().invoke(main, ["evaluate", str(SAMPLES)])
    assert table.exit_code == 0 and "type on 395 rows: accuracy" in table.output and "precision" in table.output


def test_evaluate_a_file_without_labels_it_can_score_fails_with_one_message(tmp_path):
    (tmp_path / "plain.jsonl").write_text(as_input([{"id": str(n), "text": f"post {n}"} for n in range(50)]))
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "plain.jsonl")])
    assert result.exit_code == 1
    assert result.stdout == ""
    (message,) = result.stderr.strip().splitlines()
    assert "plain.jsonl: no row has a label to score (50 rows read)" in message and "label object" in message


def test_evaluate_names_bad_labels_and_counts_unlabelled_rows(tmp_path):
    rows = [{"id": "1", "text": "I love it, thank you!", "sentiment": "positive"},
            {"id": "2", "text": "meh", "sentiment": "happy"},
            {"id": "3", "text": "no label here"}]
    (tmp_path / "mixed.jsonl").write_text(as_input(rows))
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "mixed.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 1 and json.loads(result.stdout)["skipped"] == 2
    assert "error: line 2: sentiment 'happy' is not one of negative, neutral, positive" in result.stderr
    assert "note: 1 rows carry no label and were not scored" in result.stderr

def test_feedback_is_stored_and_train_folds_it_into_a_customer_model(tmp_path, write_config, mention_json,
                                                                   write_mentions):
    config = write_config()
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("1", "the wifi is a bit slow tonight"),
                                                 mention_json("2", "love the new app")])
    runner = CliRunner()
    assert runner.invoke(main, ["run", "--once", "--config", str(config)]).exit_code == 0
    store = Store(f"sqlite:///{tmp_path / 'socialcrm.db'}")
    learned = store.get_record("x:1").sentiment.label
    store.close()
    corrected = "neutral" if learned != "neutral" else "negative"  # a correction that changes the sentiment
    result = runner.invoke(main, ["feedback", "x:1", "--type", "case", "--sentiment", corrected, "--who", "ana",
                                  "--reroute", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "type" in result.output and "sentiment" in result.output
    store = Store(f"sqlite:///{tmp_path / 'socialcrm.db'}")
    record = store.get_record("x:1")
    assert record.type == "case" and record.route == ["desk"] and record.sentiment.label == corrected
    assert any(r.startswith("corrected by ana") for r in record.reasons)
    store.close()
    trained = runner.invoke(main, ["train", "--config", str(config), "--output", str(tmp_path / "model")])
    assert trained.exit_code == 0, trained.output
    assert "fine-tuned the default model on 1 labelled examples" in trained.output
    assert (tmp_path / "model" / "textmodel.npz").exists()
    missing = runner.invoke(main, ["feedback", "x:404", "--type", "case", "--who", "ana", "--config", str(config)])
    assert missing.exit_code != 0 and "no record 'x:404'" in missing.output


# rows in the shapes of the shared datasets (../shared/datasets/README.md), a few of each
XLMT = [{"id": "xlmt-1", "text": "que dia maravilhoso, adorei o show", "sentiment": "positive", "lang": "pt"},
        {"id": "xlmt-2", "text": "odeio esse trânsito, horrível", "sentiment": "negative", "lang": "pt"},
        {"id": "xlmt-3", "text": "der Zug fährt um neun", "sentiment": "neutral", "lang": "de"},
        {"id": "xlmt-4", "text": "so ein schrecklicher Tag", "sentiment": "negative", "lang": "de"}]
TWEET_ACTS = [{"id": "ta-1", "text": "what time does the match start tonight?", "tweet_act": "question",
               "question": True, "suggestion": False},
              {"id": "ta-2", "text": "you should always back up your phone before an update", "tweet_act": "suggestion",
               "question": False, "suggestion": True},
              {"id": "ta-3", "text": "what a goal, unbelievable", "tweet_act": "expression", "question": False,
               "suggestion": False}]
AIRLINE = [{"id": "airline-1", "text": "@united flight delayed 3 hours and no one at the desk", "sentiment": "negative",
            "negative_reason": "Late Flight", "airline": "United", "sentiment_confidence": 1.0}]
COMPLAINTS = [{"id": "c-1", "text": "@Brightwave my bill is wrong again and nobody answers", "complaint": True,
               "domain": "services"}]
SEMEVAL = [{"id": "semeval19t9a-train-1", "text": "Please add an option to export my data", "suggestion": True}]


def test_evaluate_scores_each_shared_datasets_shape_from_its_own_label_fields(tmp_path, monkeypatch):
    from socialcrm.core.engine.learn import Learner
    seen_langs = []
    learn = Learner.learn

    def spy(self, mentions, *args, **kwargs):
        seen_langs.extend(m.lang for m in mentions)
        return learn(self, mentions, *args, **kwargs)

    monkeypatch.setattr(Learner, "learn", spy)
    reports = {}
    for name, rows in {"xlmt": XLMT, "tweet_acts": TWEET_ACTS, "airline": AIRLINE, "complaints": COMPLAINTS,
                       "semeval": SEMEVAL}.items():
        (tmp_path / f"{name}.jsonl").write_text(as_input(rows))
        result = CliRunner().invoke(main, ["evaluate", str(tmp_path / f"{name}.jsonl"), "--lang", "en", "--json"])
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(result.stdout)["tasks"]
    # the mentions carry each row's own language; --lang only fills rows that have none
    assert seen_langs[:4] == ["pt", "pt", "de", "de"] and set(seen_langs[4:]) == {"en"}
    sentiment = reports["xlmt"]["sentiment"]
    assert set(sentiment["per_language"]) == {"pt", "de"} and sentiment["per_language"]["pt"]["n"] == 2
    mean = (sentiment["per_language"]["pt"]["macro_recall"] + sentiment["per_language"]["de"]["macro_recall"]) / 2
    assert sentiment["metrics"]["language_mean_macro_recall"] == pytest.approx(mean, abs=1e-4)
    assert set(reports["tweet_acts"]) == {"question", "advice"}  # its suggestion is not SemEval's
    assert {"f1", "f1_lenient"} <= set(reports["tweet_acts"]["question"]["metrics"])
    assert sum(map(sum, reports["tweet_acts"]["question"]["confusion"])) == 3
    assert "loosely an rfe" in reports["tweet_acts"]["advice"]["note"]
    assert set(reports["airline"]) == {"sentiment"} and "per_language" not in reports["airline"]["sentiment"]
    assert set(reports["complaints"]) == {"complaint"} and set(reports["semeval"]) == {"suggestion"}


def test_evaluate_names_the_line_and_field_of_each_bad_dataset_label(tmp_path):
    rows = [TWEET_ACTS[0], {**TWEET_ACTS[1], "tweet_act": "advice"}, {**XLMT[0], "lang": ""},
            {**TWEET_ACTS[2], "question": "no"}]
    (tmp_path / "bad.jsonl").write_text(as_input(rows))
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "bad.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 1 and json.loads(result.stdout)["skipped"] == 3
    assert "error: line 2: tweet_act 'advice' is not one of statement" in result.stderr
    assert "error: line 3: lang must be a language code" in result.stderr
    assert "error: line 4: question must be true or false, not 'no'" in result.stderr
