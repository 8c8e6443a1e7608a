"""``socialcrm classify``, ``evaluate``, ``train`` and ``feedback``: the learning step on the command line.

``classify`` and ``evaluate`` run the very code path the pipeline runs (``Learner``, and for ``classify``
also ``routing.route`` with the config's do-not-engage list; the store's list is not read).
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterator

import click
from marshmallow import ValidationError

from socialcrm.core.engine.capture import count_repeats, fingerprint
from socialcrm.core.engine.config import Config
from socialcrm.core.engine.evaluation import TASKS, Scores, evaluate as evaluate_rows, labels_of, language_of
from socialcrm.core.engine.learn import Learner
from socialcrm.core.engine.routing import route
from socialcrm.core.sdk.model import Mention, Record, describe_validation_error, mention_from_json
from socialcrm.core.sdk.hookspecs import hookimpl

BATCH = 500


def _learner(ctx, config_path: str | None, model: str | None = None) -> tuple[Learner, Config]:
    """A learner for the given config, or for a brand-agnostic default."""
    plugins = ctx.plugins
    if config_path:
        config = ctx.config(config_path)
    else:
        config = Config.brand_agnostic()
    if model:
        config.learning.model = model
    return Learner(config, plugins), config


def _enabled_sinks(config: Config) -> set[str]:
    return {s.instance for s in config.sinks if s.enabled}


def mention_from_row(row: Any) -> Mention:
    """A mention from a ``classify`` input object: ``id`` and ``text`` at least; optionally ``lang``,
    ``network``, ``created_at``, ``author`` (with ``followers``) and engagement counts (``likes``,
    ``reposts``, ``replies``, ``quotes``, top level or under ``engagement``)."""
    if not isinstance(row, dict):
        raise ValidationError({"_schema": ["each line must be a JSON object"]})
    data = dict(row)
    if isinstance(data.get("id"), int) and not isinstance(data.get("id"), bool):
        data["id"] = str(data["id"])  # numeric ids are common in exports
    data.setdefault("network", "input")
    data.setdefault("created_at", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if isinstance(data.get("author"), str):
        data["author"] = {"handle": data["author"]}
    counts = {k: data[k] for k in ("likes", "reposts", "replies", "quotes") if k in data}
    if counts:
        data["engagement"] = {**counts, **(data.get("engagement") or {})}
    return mention_from_json(data)


def classified(row_id: str, record: Record) -> dict[str, Any]:
    """The output object for one input line."""
    return {"id": row_id, "type": record.type, "sentiment": {"label": record.sentiment.label,
                                                            "score": record.sentiment.score},
            "action": record.action, "priority": record.priority, "influence": record.influence.score,
            "influence_tier": record.influence.tier, "mode": record.mode, "lang": record.lang,
            "confidence": record.confidence, "fraud": record.fraud, "route": record.route, "team": record.team,
            "reasons": record.reasons}


def repeats_of(mentions: list[Mention], seen: dict[str, tuple[int, list[str]]]) -> list[int]:
    """How many near-identical posts by other accounts came before each mention (``seen`` spans the input)."""
    return count_repeats([(fingerprint(m.text), m.author.id or m.author.handle or m.id) for m in mentions], seen)


def _read(handle: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(handle, start=1):
        if line.strip():
            yield number, line


def _batches(handle: IO[str], errors: list[str],
             defaults: dict[str, Any] | None = None) -> Iterator[list[tuple[int, dict, Mention]]]:
    """Pages of (line number, row, mention); ``defaults`` fill the mention's missing fields, not the row's."""
    batch: list[tuple[int, dict, Mention]] = []
    for number, line in _read(handle):
        try:
            row = json.loads(line)
            filled = {**defaults, **row} if defaults and isinstance(row, dict) else row
            batch.append((number, row, mention_from_row(filled)))
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not JSON ({exc.msg} at column {exc.colno})")
        except ValidationError as exc:
            errors.append(f"line {number}: {describe_validation_error(exc)}")
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@click.command()
@click.option("--input", "input_file", type=click.File("r", encoding="utf-8"), default="-",
              help="JSON Lines to classify (default: standard input).")
@click.option("--output", "output_file", type=click.File("w", encoding="utf-8"), default="-",
              help="Where to write one JSON object per input line (default: standard output).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="Apply a brand's config (terms, routes, model); default: brand-agnostic.")
@click.option("--model", help="'default', 'none' (content library and lexicon only) or a model path.")
@click.pass_obj
def classify(ctx, input_file: IO[str], output_file: IO[str], config_path: str | None, model: str | None) -> None:
    """Classify JSON Lines of mentions ({"id", "text", ...}) with the pipeline's own learning step."""
    learner, config = _learner(ctx, config_path, model)
    sinks = _enabled_sinks(config)
    errors: list[str] = []
    reported = 0
    seen: dict[str, tuple[int, list[str]]] = {}  # near-identical posts across the whole input
    for batch in _batches(input_file, errors):
        for problem in errors[reported:]:
            click.echo(f"error: {problem}", err=True)
        reported = len(errors)
        mentions = [mention for _, _, mention in batch]
        repeats = count_repeats([(fingerprint(m.text), m.author.id or m.author.handle or m.id) for m in mentions], seen)
        records = learner.learn(mentions, repeats)
        route(records, config.routes, sinks, config.privacy, unmatched=config.routing.unmatched)
        for (_, row, _), record in zip(batch, records):
            output_file.write(json.dumps(classified(str(row["id"]), record), ensure_ascii=False) + "\n")
    for problem in errors[reported:]:
        click.echo(f"error: {problem}", err=True)
    output_file.flush()
    if errors:
        sys.exit(1)


@click.command()
@click.argument("labelled", type=click.File("r", encoding="utf-8"))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True))
@click.option("--model", help="'default', 'none' or a model path.")
@click.option("--lang", "default_lang", help="Language of rows without a lang field, as a source would tag them "
              "(e.g. en for the English shared datasets; default: detect it from the text).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every metric.")
@click.pass_obj
def evaluate(ctx, labelled: IO[str], config_path: str | None, model: str | None, default_lang: str | None,
             as_json: bool) -> None:
    """Score the learning step on labelled JSON Lines, e.g. any file of the shared datasets as it is.

    Each row is {"id", "text"} with any of: sentiment (macro-recall; with lang also per language and their
    mean), complaint (F1, typed case or rant), suggestion (F1, typed rfe), question or tweet_act (question F1,
    typed query; lenient: query or case; a tweet_acts suggestion is reported apart as advice), or a label
    object with type and/or sentiment (as in samples/mentions.jsonl)."""
    learner, _ = _learner(ctx, config_path, model)
    errors: list[str] = []
    unlabelled = 0
    rows: list[dict] = []
    records: list[Record] = []
    seen: dict[str, tuple[int, list[str]]] = {}  # near-identical posts across the file, as classify counts them
    started = time.perf_counter()
    for batch in _batches(labelled, errors, {"lang": default_lang} if default_lang else None):
        kept = []
        for number, row, mention in batch:
            try:
                language_of(row)
                if not labels_of(row):
                    unlabelled += 1
                    continue
            except ValueError as exc:
                errors.append(f"line {number}: {exc}")
                continue
            kept.append((row, mention))
        mentions = [m for _, m in kept]
        records.extend(learner.learn(mentions, repeats_of(mentions, seen)))
        rows.extend(r for r, _ in kept)
    seconds = time.perf_counter() - started
    for problem in errors:
        click.echo(f"error: {problem}", err=True)
    if not rows:
        raise click.ClickException(
            f"{labelled.name}: no row has a label to score ({unlabelled + len(errors)} rows read); give each row "
            f"sentiment, complaint, suggestion, question or tweet_act, or a label object with type or sentiment "
            f"(README: labelled data)")
    if unlabelled:
        click.echo(f"note: {unlabelled} rows carry no label and were not scored", err=True)
    results = evaluate_rows(rows, records)
    if as_json:
        click.echo(json.dumps({"file": labelled.name, "rows": len(rows), "skipped": len(errors) + unlabelled,
                               "texts_per_s": round(len(rows) / seconds, 1) if seconds else None,
                               "tasks": {r.task: r.as_dict() for r in results}}))
        return
    _print_scores(results)


def _print_scores(results: list[Scores]) -> None:
    """Each task's metrics, its per-label table (types) and its confusion matrix."""
    from rich.console import Console
    from rich.table import Table
    console = Console()
    for result in results:
        console.print(f"[bold]{result.task}[/] on {result.n:,} rows: " +
                      ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()), highlight=False)
        if result.note:
            console.print(f"  ({result.note})", highlight=False)
        if result.per_language:
            languages = Table("language", "rows", "macro_recall", "macro_f1", title_justify="left")
            for lang, m in result.per_language.items():
                languages.add_row(lang, str(m["n"]), f"{m['macro_recall']:.4f}", f"{m['macro_f1']:.4f}")
            console.print(languages)
        if result.per_label:
            per_label = Table(result.task, "precision", "recall", "f1", "support", title_justify="left")
            for label, m in result.per_label.items():
                per_label.add_row(label, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}",
                                  str(m["support"]))
            console.print(per_label)
        table = Table("gold \\ predicted", *result.labels, title_justify="left")
        for label, row in zip(result.labels, result.confusion):
            table.add_row(label, *(str(n) for n in row))
        console.print(table)


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="Fold this installation's feedback (people's corrections in the store) into its model.")
@click.option("--data", "data_files", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="Labelled JSON Lines of your own ({text, sentiment|complaint|suggestion|question}); repeatable.")
@click.option("--shared", "shared_dir", type=click.Path(file_okay=False, exists=True),
              help="Retrain the bundled default model from the public datasets folder (shared/datasets).")
@click.option("--base", default="default", show_default=True,
              help="Start from 'default' (fine-tune it) or 'none' (train on your data only).")
@click.option("--output", type=click.Path(), help="Where to save the model (default: the config's "
              "[learning] model path, else ./socialcrm-model).")
@click.pass_obj
def train(ctx, config_path: str | None, data_files: tuple[str, ...], shared_dir: str | None, base: str,
          output: str | None) -> None:
    """Train or fine-tune the text model: from people's corrections, your own labelled data, or the shared datasets."""
    from socialcrm.core.engine.learning import textmodel
    from socialcrm.core.services.training import TrainingDataError, feedback_rows, read_labelled
    if shared_dir:
        model = textmodel.train_default(shared_dir)
        target = Path(output) if output else textmodel.DEFAULT_MODEL_DIR
        model.save(target)
        click.echo(f"trained the default model from {shared_dir}; saved to {target}")
        return
    rows: list[dict] = []
    for path in data_files:
        try:
            rows.extend(read_labelled(path))
        except TrainingDataError as exc:
            raise click.ClickException(f"{exc}; nothing trained") from None
    config = None
    if config_path:
        config = ctx.config(config_path)
        from socialcrm.core.engine.stores import open_store
        store = open_store(config)
        try:
            rows.extend(feedback_rows(store))
        finally:
            store.close()
    if not rows:
        raise click.ClickException("nothing to learn from: give --data FILE, or --config with feedback in its store")
    if base == "none":
        by_task = {task: [r for r in rows if task in r] for task in TASKS}
        model = textmodel.train(by_task["sentiment"], by_task["complaint"], by_task["suggestion"],
                                question_rows=[r for r in rows if "question" in r])
        how = "trained on your data only"
    else:
        from socialcrm.core.engine.learn import load_model
        model = textmodel.fine_tune(load_model(base, Path.cwd()), rows)
        how = f"fine-tuned the {base} model"
    # the config's own model path, when it names one (not the bundled default, not none)
    own_model = config.learning.model if config and config.learning.model not in (None, "default", "none") else None
    target = Path(output) if output else (config.base_dir / own_model if own_model else Path("socialcrm-model"))
    model.save(target)
    click.echo(f"{how} on {len(rows)} labelled examples; saved to {target}"
               + ("" if own_model else f" (set [learning] model = \"{target}\" to use it)"))


@click.command()
@click.argument("record_id")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="SOCIALCRM_CONFIG",
              default="socialcrm.toml", show_default=True)
@click.option("--type", "type_", type=click.Choice(["case", "query", "rant", "rave", "lead", "rfe", "spam", "news",
                                                     "other"]))
@click.option("--sentiment", type=click.Choice(["positive", "neutral", "negative"]))
@click.option("--who", required=True, help="Who corrects (kept with the correction, for audit).")
@click.option("--note", help="Why, in a few words.")
@click.option("--reroute", is_flag=True, help="Route the corrected record again (new sinks get it).")
@click.pass_obj
def feedback(ctx, record_id: str, config_path: str, type_: str | None, sentiment: str | None, who: str,
             note: str | None, reroute: bool) -> None:
    """Correct a record's type or sentiment (its priority and action follow); kept for `socialcrm train`."""
    from socialcrm.core.engine.stores import open_store
    from socialcrm.core.services.feedback import correct_record
    if not type_ and not sentiment and not reroute:
        raise click.UsageError("give --type, --sentiment or --reroute")
    config = ctx.config(config_path)
    store = open_store(config)
    try:
        result = correct_record(store, config, _enabled_sinks(config), record_id, who,
                                type_=type_, sentiment=sentiment, reroute=reroute, note=note)
    finally:
        store.close()
    if result is None:
        raise click.ClickException(f"no record {record_id!r}")
    changes = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in result["changes"].items()) or "no change"
    recomputed = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in result["recomputed"].items())
    click.echo(f"{record_id}: {changes}" + (f" (so {recomputed})" if recomputed else ""))


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the learning commands."""
    for command in (classify, evaluate, train, feedback):
        cli.add_command(command)
