"""The targets of issue #17 and the Markdown tables of BENCHMARKS.md, both read off bench/learning.py's report.

The tables are generated from the JSON report (``python bench/learning.py --from report.json --markdown``),
never typed by hand.
"""
from __future__ import annotations

from typing import Any

#: (what, dataset, metric of its task, at least) on the hidden test splits; we compare the CV estimates
TARGETS = (
    ("TweetEval macro-recall >= 67", "tweeteval_sentiment", "macro_recall", 0.67),
    ("airline macro-recall >= 76", "airline_sentiment", "macro_recall", 0.76),
    ("complaint F1 >= 0.80", "complaints", "f1", 0.80),
    ("suggestion F1 >= 0.68", "semeval2019_task9_suggestions", "f1", 0.68),
    ("multilingual mean macro-recall >= 58", "xlmt_sentiment", "language_mean_macro_recall", 0.58),
    ("multilingual: no language below 48", "xlmt_sentiment", "language_min_macro_recall", 0.48),
    ("question F1 >= 0.80", "tweet_acts", "f1", 0.80),
)
SPAM_TARGET = "spam F1 >= 0.90 at precision >= 0.95"
SYSTEMS = (("cv", "default recipe, CV"), ("cv_at_test_prior", "default recipe, CV, at the test split's prior"),
           ("lexicon", "lexicon baseline"), ("model", "committed model"), ("embeddings", "embeddings extra, CV"),
           ("tfidf_svc", "TF-IDF+LinearSVC, CV"))


def _at(metrics: dict | None, key: str) -> float | None:
    return None if not metrics or metrics.get(key) is None else metrics[key]


def targets_met(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target beside the default recipe's cross-validated estimate (and the extra's, where measured);
    the spam target beside the committed model on the bundled samples (no spam set is shared)."""
    rows = {row["dataset"]: row for row in report["datasets"]}
    out = []
    for what, dataset, metric, least in TARGETS:
        row = rows.get(dataset)
        if row is None:
            continue
        for system in ("cv", "cv_at_test_prior", "embeddings"):
            if system == "cv_at_test_prior":
                value = row.get("cv_at_test_prior") if metric == "f1" else None
            else:
                value = _at(row.get(f"{system}_metrics"), metric)
            if value is None and system != "cv":
                continue
            shown = None if value is None else round(value * 100, 1) if row["percent"] else round(value, 3)
            out.append({"target": what, "system": system, "dataset": dataset, "metric": metric, "estimate": shown,
                        "met": None if value is None else value >= least})
    spam = (report.get("types", {}).get("samples", {}).get("by_system", {}).get("model") or {}).get("spam")
    out.append({"target": SPAM_TARGET, "system": "model", "dataset": "bundled samples (label.type)",
                "metric": "spam f1 / precision",
                "estimate": None if not spam else {"f1": spam["f1"], "precision": spam["precision"]},
                "met": None if not spam else spam["f1"] >= 0.90 and spam["precision"] >= 0.95})
    return out


def _cell(value: Any, bold: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return f"**{text}**" if bold else text


def _language_table(report: dict) -> list[str]:
    (row,) = [r for r in report["datasets"] if r["dataset"] == "xlmt_sentiment"] or [None]
    if not row or not row.get("cv_per_language"):
        return []
    systems = [(key, name) for key, name in SYSTEMS if row.get(f"{key}_per_language")]
    lines = ["", "xlmt_sentiment per language (macro-recall x100):", "",
             "| language | rows | " + " | ".join(name for _, name in systems) + " |",
             "|---|---:|" + "---:|" * len(systems)]
    for lang, figures in row["cv_per_language"].items():
        cells = [_cell(round(row[f"{key}_per_language"][lang]["macro_recall"] * 100, 1), key == "cv")
                 for key, _ in systems]
        lines.append(f"| {lang} | {figures['n']:,} | " + " | ".join(cells) + " |")
    return lines


def _types_table(report: dict) -> list[str]:
    types = report.get("types", {})
    lines = ["", "Per type (precision / recall / F1):", "", "| type | data | system | precision | recall | F1 |",
             "|---|---|---|---:|---:|---:|"]
    for system, m in types.get("tweet_acts_query", {}).items():
        lines.append(f"| query | tweet_acts questions | {dict(SYSTEMS)[system]} | {_cell(m.get('precision'))} | "
                     f"{_cell(m.get('recall'))} | {_cell(m.get('f1'))} (lenient, query or case: "
                     f"{_cell(m.get('f1_lenient'))}) |")
    samples = types.get("samples", {})
    for system, by_type in samples.get("by_system", {}).items():
        for kind, m in by_type.items():
            if m:
                lines.append(f"| {kind} | bundled samples ({samples['rows']:,}; {m['support']} {kind}) | "
                             f"{dict(SYSTEMS)[system]} | {m['precision']} | {m['recall']} | {m['f1']} |")
    spam = report.get("spam_false_positives", {})
    if spam:
        lines += ["", "Shared tweets typed spam (none is meant as spam):", "", "| system | typed spam | of | rate |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {dict(SYSTEMS)[s]} | {m['spam']:,} | {m['n']:,} | {m['rate']} |" for s, m in spam.items()]
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The learning-quality tables of BENCHMARKS.md from a bench/learning.py report."""
    k = report["folds"]
    title = f"{k}-fold CV" + (" (--quick: a tenth of each dataset, not a figure)" if report.get("quick") else "")
    lines = [f"Learning quality, {title}; recipe {report['recipe_hash']}:", "",
             "| dataset | rows | metric | **default recipe, CV** | lexicon baseline | committed model | "
             "embeddings extra, CV | TF-IDF+LinearSVC, CV | published |", "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for row in report["datasets"]:
        scale = "x100" if row["percent"] else ""
        model = _cell(row["model"]) + (" (in-sample*)" if row["model_in_sample"] else "")
        published = row["published"] + (f"; \"?\" rule here: {row['question_mark_rule']}"
                                        if row.get("question_mark_rule") is not None else "")
        cv = _cell(row["cv"], True) + (f" ({row['cv_at_test_prior']} at the test's {row['test_prior']:.1%} positives)"
                                       if row.get("cv_at_test_prior") is not None else "")
        lines.append(f"| {row['dataset']} | {row['rows']:,} | {row['metric']} {scale} | {cv} | "
                     f"{_cell(row['lexicon'])} | {model} | {_cell(row['embeddings'])} | {_cell(row['tfidf_svc'])} | "
                     f"{published} |")
    trained = [f"{row['dataset']}: {row['model_in_sample']}" for row in report["datasets"] if row["model_in_sample"]]
    if trained:
        lines += ["", "\\* the committed artefact trained on these rows (its meta: " + "; ".join(trained) + ")."]
    if report.get("embeddings_note"):
        lines += ["", f"Embeddings extra: {report['embeddings_note']}."]
    lines += _language_table(report)
    lines += _types_table(report)
    lines += ["", "Targets (issue #17, on the hidden test splits) beside the estimates:", "",
              "| target | system | estimate | met |", "|---|---|---:|---|"]
    for t in report["targets"]:
        met = "-" if t["met"] is None else ("**met**" if t["met"] else "**not met**")
        estimate = t["estimate"]
        if isinstance(estimate, dict):
            estimate = ", ".join(f"{key} {value}" for key, value in estimate.items()) + f" ({t['dataset']})"
        lines.append(f"| {t['target']} | {dict(SYSTEMS)[t['system']]} | {_cell(estimate)} | {met} |")
    speed = report.get("learning_step_texts_per_s", {})
    if speed:
        lines += ["", "Learning step, texts/s in this run (batches of 500, one core): " +
                  ", ".join(f"{dict(SYSTEMS)[s]} {v:,.0f}" for s, v in speed.items()) + "."]
    return "\n".join(lines)
