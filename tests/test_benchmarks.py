"""Every benchmark runs, takes --json, and ends with one JSON object of its figures (small sizes here:
the figures themselves are recorded in BENCHMARKS.md, never asserted as timings)."""
import json
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def run(script, *args):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--json"], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_pipeline_benchmark():
    figures = run("pipeline.py", "--mentions", "400")
    assert figures["mentions"] == 400 and figures["records"] > 300
    assert {"mentions_per_s", "vader_per_s", "ratio", "memory_growth_4x_input"} <= set(figures)


def test_classify_benchmark():
    figures = run("classify.py", "--texts", "300")
    assert figures["texts"] == 300 and figures["texts_per_s"] > 0 and figures["vader_per_s"] > 0
    # issue #17's target names the whole learning step, measured beside bare VADER in the same run
    assert figures["learning_step_per_s"] > 0 and figures["learning_step_target_per_s"] == 5000
    assert figures["learning_step_target_met"] is (figures["learning_step_per_s"] >= 5000)


def test_sinks_benchmark():
    figures = run("sinks.py", "--records", "200")
    assert figures["salesforce_calls_per_1000"] > 0 and figures["zendesk_calls_per_1000"] > 0


def tiny_datasets(root: Path) -> Path:
    """Every shared dataset's folder with a few dozen rows in its shape (../shared/datasets/README.md)."""
    words = {"negative": "awful terrible broken", "neutral": "the schedule says nine", "positive": "lovely great thanks"}
    shapes = {
        "tweeteval_sentiment": lambda i, s: {"sentiment": s},
        "airline_sentiment": lambda i, s: {"sentiment": s, "negative_reason": "Late Flight" if s == "negative" else None,
                                           "airline": "United", "sentiment_confidence": 1.0},
        "xlmt_sentiment": lambda i, s: {"sentiment": s, "lang": "pt" if i % 2 else "de"},
        "complaints": lambda i, s: {"complaint": s == "negative", "domain": "services"},
        "semeval2019_task9_suggestions": lambda i, s: {"suggestion": s == "positive"},
        "tweet_acts": lambda i, s: {"tweet_act": "question" if s == "neutral" else "expression",
                                    "question": s == "neutral", "suggestion": False},
    }
    for name, labels in shapes.items():
        (root / name).mkdir(parents=True)
        rows = []
        for i in range(36):
            s = ("negative", "neutral", "positive")[i % 3]
            text = f"{words[s]} number {i} " + ("what time is it?" if name == "tweet_acts" and s == "neutral" else "")
            rows.append({"id": f"{name}-{i}", "text": text, **labels(i, s)})
        (root / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


def learning_folds():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import learning_folds
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return learning_folds


def test_learning_benchmark_cross_validates_every_dataset_from_cached_fold_models(tmp_path):
    from socialcrm.core.engine.learning.textmodel import TextModel
    datasets = tiny_datasets(tmp_path / "datasets")
    folds = learning_folds().FoldModels(datasets, 2, False, tmp_path / "cache")
    for fold in (0, 1):  # the committed model stands in for each fold's (no training in tests)
        folds._save(folds.path(fold), TextModel.default(), {"tweeteval_sentiment"})
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "learning.py"), "--datasets", str(datasets),
                             "--folds", "2", "--cache", str(tmp_path / "cache"), "--markdown", "--json",
                             "--without-embeddings"],
                            check=True, capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["fold_models"] == {"trained": 0, "cached": 2, "train_seconds": 0.0}
    table = {row["dataset"]: row for row in report["datasets"]}
    assert set(table) == {"tweeteval_sentiment", "airline_sentiment", "complaints", "semeval2019_task9_suggestions",
                          "xlmt_sentiment", "tweet_acts"}
    for row in table.values():
        assert row["rows"] == 36
        # the same model in every fold: cross-validation must then score every row once, as the whole run does
        assert row["cv_metrics"] == row["model_metrics"] and row["cv"] is not None
        assert row["lexicon"] is not None and row["tfidf_svc"] is not None and row["embeddings"] is None
    assert set(table["xlmt_sentiment"]["cv_per_language"]) == {"de", "pt"}
    assert table["xlmt_sentiment"]["metric"] == "language_mean_macro_recall"
    assert table["tweet_acts"]["question_mark_rule"] == 1.0  # every question here has a "?", nothing else does
    # the committed artefact's own account of what it trained on, per dataset
    assert table["tweeteval_sentiment"]["model_in_sample"] == "tweeteval_sentiment train (sentiment)"
    assert table["xlmt_sentiment"]["model_in_sample"].startswith("xlmt_sentiment train")
    assert report["recipe_trains_on"] == ["tweeteval_sentiment"]
    assert {"spam", "news", "query"} == set(report["types"]["samples"]["by_system"]["model"])
    assert report["spam_false_positives"]["cv"]["n"] == 36 * 5  # the tweets: every set but SemEval's forum posts
    assert len([t for t in report["targets"] if t["system"] == "cv"]) == 7
    semeval = table["semeval2019_task9_suggestions"]
    assert semeval["test_prior"] == 0.1044 and 0 <= semeval["cv_at_test_prior"] <= 1
    assert [t["system"] for t in report["targets"] if t["dataset"] == semeval["dataset"]] == ["cv", "cv_at_test_prior"]
    assert all(t["met"] is (t["estimate"] >= 0.8) for t in report["targets"] if t["target"] == "question F1 >= 0.80")
    assert "| dataset | rows | metric | **default recipe, CV** |" in result.stdout
    assert "| de |" in result.stdout and "left out (--without-embeddings)" in report["embeddings_note"]
    # the tables again from the saved report, without a run
    (tmp_path / "report.json").write_text(result.stdout, encoding="utf-8")
    again = subprocess.run([sys.executable, str(ROOT / "bench" / "learning.py"), "--from", str(tmp_path / "report.json"),
                            "--markdown"], check=True, capture_output=True, text=True, timeout=60).stdout
    assert again.strip().splitlines()[:-1] == result.stdout.strip().splitlines()[:-1]


def test_learning_folds_split_every_dataset_the_same_way_and_train_each_fold_once(tmp_path):
    from socialcrm.core.engine.learning.textmodel import TextModel
    module = learning_folds()
    datasets = tiny_datasets(tmp_path / "datasets")
    ids = [f"row-{i}" for i in range(400)]
    assert {module.fold_of("complaints", i, 5) for i in ids} == set(range(5))
    assert 20 < sum(module.in_quick_sample("complaints", i) for i in ids) < 60  # about a tenth
    calls = []

    def trainer(datasets_dir, exclude):
        left_out = [i for i in ids if exclude("complaints", {"id": i})]
        calls.append(left_out)
        return TextModel.default()

    first = module.FoldModels(datasets, 5, False, tmp_path / "cache", trainer)
    first.model(3)
    assert calls[0] == [i for i in ids if module.fold_of("complaints", i, 5) == 3]
    assert first.trained == 1 and first.trained_on == {"complaints"}
    again = module.FoldModels(datasets, 5, False, tmp_path / "cache", trainer)
    again.model(3)
    assert len(calls) == 1 and again.cached == 1 and again.trained_on == {"complaints"}
    quick = module.FoldModels(datasets, 5, True, tmp_path / "cache", trainer)
    assert quick.key != first.key
    quick.model(3)
    assert set(calls[1]) == {i for i in ids if module.fold_of("complaints", i, 5) == 3
                             or not module.in_quick_sample("complaints", i)}
    with (datasets / "complaints" / "train.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "new", "text": "a new row", "complaint": True}) + "\n")
    assert module.FoldModels(datasets, 5, False, tmp_path / "cache", trainer).key != first.key


def test_complaint_head_benchmark(tmp_path, shared_datasets):
    plain = run("complaint_head.py", "--rows", "400", "--seeds", "13", "14")
    assert plain["features"] == "recipe" and set(plain["cv_f1_by_seed"]) == {"13", "14"}
    assert 0 < plain["holdout_f1"] <= plain["holdout_f1_best_threshold"] <= 1
    # pretrained vectors in the GloVe text format: only words of the vocabulary count, negated ones never
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("late 1 0 0\ndelayed 0.9 0.1 0\nthanks 0 0 1\nnot-a-word 0 1 0\n", encoding="utf-8")
    helped = run("complaint_head.py", "--rows", "400", "--seeds", "13", "--vectors", str(vectors))
    assert helped["features"] == "recipe + vectors.txt" and 0 < helped["vector_coverage"] < 0.01


def test_sentiment_head_benchmark(tmp_path, shared_datasets):
    figures = run("sentiment_head.py", "--rows", "200", "--cache", str(tmp_path), "--config", "power=0,C=2")
    assert figures["folds"] == 3 and len(figures["results"]) == 1
    for result in figures["results"]:
        groups = result["macro_recall"]
        assert {"tweeteval", "airline", "xlmt:pt"} <= set(groups)
        assert all(0 <= v <= 100 for v in groups.values()) and result["xlmt_min"] <= result["xlmt_mean"]
