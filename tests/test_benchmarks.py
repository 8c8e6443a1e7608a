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


def test_sinks_benchmark():
    figures = run("sinks.py", "--records", "200")
    assert figures["salesforce_calls_per_1000"] > 0 and figures["zendesk_calls_per_1000"] > 0


def test_learning_benchmark(shared_datasets):
    table = run("learning.py")["learning_quality"]
    assert {row["dataset"] for row in table} == {"tweeteval_sentiment", "airline_sentiment", "complaints",
                                                 "semeval2019_task9_suggestions"}
    for row in table:
        assert row["model"] > row["lexicon"]  # the model must beat the lexicon baseline everywhere


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
