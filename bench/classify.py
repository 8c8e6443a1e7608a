"""Benchmark: texts per second for the default learning step beside bare VADER, in one run.

Three loops over the same texts, on one core (the process is pinned to one CPU where the OS allows): bare VADER (``polarity_scores``), the default model
alone (``TextModel.score``, VADER included, as it uses VADER's scores as features), and the whole
learning step the pipeline runs (``Learner.learn``: VADER, the model, the content library, influence,
mode, priority, routing and reasons). The texts are TweetEval's validation tweets when the shared
datasets are beside the repository, else the bundled sample mentions cycled.

    python bench/classify.py [--texts N] [--repeat 3] [--json]

Issue #17's speed target names the whole learning step, beside bare VADER in the same run:
``learning_step_per_s`` >= 5,000 (``learning_step_target_met``); ``texts_per_s`` stays the model alone
(issue #7's figure).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from socialcrm.core.engine.config import Config
from socialcrm.core.services.demo import samples_dir
from socialcrm.core.engine.learn import Learner
from socialcrm.core.engine.learning.sentiment import analyzer
from socialcrm.core.engine.learning.textmodel import TextModel
from socialcrm.core.sdk.model import mention_from_json
from socialcrm.core.engine.plugins import default_manager

SHARED = Path(os.environ.get("SOCIALCRM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
LEARNING_STEP_TARGET = 5_000  # texts/s, the whole learning step on one core (issue #17)


def one_core() -> int | None:
    """Pin this process (and the threads it starts later) to one CPU; which one, or None where it cannot."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def load_texts(n: int) -> tuple[list[str], str]:
    tweets = SHARED / "datasets" / "tweeteval_sentiment" / "val.jsonl"
    if tweets.exists():
        base, origin = [json.loads(line)["text"] for line in tweets.open(encoding="utf-8")], "TweetEval validation"
    else:
        base = [json.loads(line)["text"] for line in (samples_dir() / "mentions.jsonl").open(encoding="utf-8")]
        origin = "bundled samples"
    return [base[i % len(base)] for i in range(n)], origin


def timed(func) -> float:
    """Seconds ``func()`` takes."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--json", action="store_true", help="end with one JSON object of the figures")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the three loops; each keeps its best")
    args = parser.parse_args()
    cpu = one_core()
    texts, origin = load_texts(args.texts)
    scorer, model = analyzer(), TextModel.default()
    config = Config.brand_agnostic()
    learner = Learner(config, default_manager(), model=model)
    mentions = [mention_from_json({"network": "bench", "id": str(i), "text": t, "lang": "en",
                                   "created_at": "2026-11-01T00:00:00Z"}) for i, t in enumerate(texts)]
    model.score(texts[:100])  # warm-up: lazy token rows, caches
    # The loops take turns, --repeat times, each keeping its best time (the timeit convention).
    vader_s = model_s = learn_s = float("inf")
    for _ in range(args.repeat):
        vader_s = min(vader_s, timed(lambda: [scorer.polarity_scores(t) for t in texts]))
        model_s = min(model_s, timed(lambda: [model.score(texts[i:i + 500]) for i in range(0, len(texts), 500)]))
        learn_s = min(learn_s, timed(lambda: [learner.learn(mentions[i:i + 500]) for i in range(0, len(mentions), 500)]))
    n = len(texts)
    # texts_per_s is the figure issue #7's target names: the default model classifying texts.
    figures = {"texts": n, "origin": origin, "vader_per_s": round(n / vader_s, 1),
               "texts_per_s": round(n / model_s, 1), "model_per_s": round(n / model_s, 1),
               "learning_step_per_s": round(n / learn_s, 1),
               "model_over_vader": round(vader_s / model_s, 3), "learning_step_over_vader": round(vader_s / learn_s, 3),
               "learning_step_target_per_s": LEARNING_STEP_TARGET,
               "learning_step_target_met": n / learn_s >= LEARNING_STEP_TARGET, "pinned_cpu": cpu}
    if not args.json:
        print(f"{n:,} texts ({origin}), one core" + (f" (CPU {cpu})" if cpu is not None else ""))
        print(f"bare VADER:                  {figures['vader_per_s']:>10,.0f} texts/s")
        print(f"default model (with VADER):  {figures['texts_per_s']:>10,.0f} texts/s")
        print(f"whole learning step:         {figures['learning_step_per_s']:>10,.0f} texts/s "
              f"(target >= {LEARNING_STEP_TARGET:,}: {'met' if figures['learning_step_target_met'] else 'not met'})")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
