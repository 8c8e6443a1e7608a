"""The whole workflow end to end over SQLite: listen -> capture -> learn -> engage."""
import json

from click.testing import CliRunner

from socialcrm import AuthError, Page, Source, hookimpl
from socialcrm.core.cli.main import main
from socialcrm.core.engine.config import load_config
from socialcrm.core.engine.pipeline import Pipeline
from socialcrm.core.store import Transaction

TEXTS = [
    ("1", "@BrightwaveHelp my internet is down again, third outage this week"),
    ("2", "thinking of switching to Brightwave, how much is fibre in Leeds?"),
    ("3", "does anyone know if the WaveBox supports wifi 6?"),
    ("4", "Brightwave is the worst company, absolutely useless"),
    ("5", "love my Brightwave fibre, thanks!"),
]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_run_once_twice_delivers_every_record_exactly_once(write_config, tmp_path, mention_json, write_mentions):
    path = write_config()
    write_mentions(tmp_path / "mentions.jsonl", [mention_json(i, t) for i, t in TEXTS] +
                   [mention_json("6", "RT @user1: @BrightwaveHelp my internet is down", repost_of="x:1")])
    runner = CliRunner()
    first = runner.invoke(main, ["run", "--once", "--config", str(path)])
    assert first.exit_code == 0, first.output
    assert "listened: 6 mentions, 5 new records" in first.output and "1 reposts counted" in first.output
    second = runner.invoke(main, ["run", "--once", "--config", str(path)])
    assert "listened: 0 mentions, 0 new records" in second.output and "delivered 0" in second.output
    desk = read_jsonl(tmp_path / "out" / "desk.jsonl")
    sales = read_jsonl(tmp_path / "out" / "sales.jsonl")
    assert sorted(r["id"] for r in desk) == ["x:1", "x:3", "x:4"]
    assert [r["id"] for r in sales] == ["x:2"]
    case = next(r for r in desk if r["id"] == "x:1")
    assert case["type"] == "case" and case["team"] == "care" and case["route"] == ["desk"]
    assert {"type", "content", "sentiment", "action", "influence", "priority", "reasons"} <= set(case)

    # New lines appended to the source are all the next run reads.
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("7", "my WaveBox is broken, please fix")], mode="a")
    third = runner.invoke(main, ["run", "--once", "--config", str(path)])
    assert "listened: 1 mentions, 1 new records" in third.output
    assert len(read_jsonl(tmp_path / "out" / "desk.jsonl")) == 4

    status = runner.invoke(main, ["status", "--json", "--config", str(path)])
    sinks = {row["sink"]: row for row in json.loads(status.output)["sinks"]}
    assert sinks["desk"]["delivered"] == 4 and sinks["desk"]["pending"] == 0
    records = runner.invoke(main, ["records", "--json", "--type", "case", "--config", str(path)])
    assert {json.loads(line)["id"] for line in records.output.splitlines()} == {"x:1", "x:7"}
    repost_counted = next(json.loads(line) for line in records.output.splitlines() if '"x:1"' in line)
    assert repost_counted["reposts"] == 1


def test_a_crash_mid_run_loses_nothing_and_repeats_nothing(config, plugins, tmp_path, mention_json, write_mentions,
                                                           monkeypatch):
    write_mentions(tmp_path / "mentions.jsonl", [mention_json(str(i), f"my router is broken #{i}") for i in range(120)])
    pipeline = Pipeline(config, plugins)
    real_save = Transaction.save_page
    calls = {"n": 0}

    def crash_on_third_page(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(Transaction, "save_page", crash_on_third_page)
    try:
        pipeline.run_once()
    except KeyboardInterrupt:
        pass
    assert pipeline.store.counts()["records"] == 100  # two pages of 50 committed, the third not at all
    pipeline.close()

    again = Pipeline(load_config(config.path, plugins), plugins)
    listened, delivered = again.run_once()
    assert listened.fetched == 20 and listened.duplicates == 0
    desk = read_jsonl(tmp_path / "out" / "desk.jsonl")
    assert sorted(r["id"] for r in desk) == sorted(f"x:{i}" for i in range(120))
    again.close()


class LockedSource(Source):
    """Always fails to authenticate."""

    name = "locked"

    def fetch(self, cursor):
        raise AuthError("401 Unauthorized: the bearer token was rejected")
        yield Page([], None)  # pragma: no cover


@hookimpl
def register_sources(register):
    register(LockedSource)


def test_an_auth_failure_stops_one_source_not_the_others(write_config, base_config, plugins, tmp_path,
                                                         mention_json, write_mentions):
    import sys
    plugins.register(sys.modules[__name__], name="locked_plugin")
    path = write_config(base_config.replace("[sinks.desk]", '[sources.locked]\n\n[sinks.desk]'))
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("1", "my router is broken")])
    pipeline = Pipeline(load_config(path, plugins), plugins)
    listened, delivered = pipeline.run_once()
    assert listened.errors == {"locked": "authentication failed: 401 Unauthorized: the bearer token was rejected"}
    assert listened.records == 1 and delivered.delivered["desk"] == 1
    pipeline.close()


def test_backpressure_pauses_listening_when_the_outbox_is_full(write_config, base_config, plugins, tmp_path,
                                                               mention_json, write_mentions, caplog):
    path = write_config(base_config.replace('url = "sqlite:///socialcrm.db"',
                                            'url = "sqlite:///socialcrm.db"\nmax_pending = 60'))
    write_mentions(tmp_path / "mentions.jsonl", [mention_json(str(i), f"my router is broken {i}") for i in range(200)])
    pipeline = Pipeline(load_config(path, plugins), plugins)
    listened = pipeline.listen()
    assert listened.paused and listened.records == 100  # stopped after the page that crossed the bound
    assert "listening paused until the sinks catch up" in caplog.text
    # Delivering drains the outbox and listening goes on from the stored cursor: nothing skipped.
    listened, delivered = pipeline.run_once()
    assert pipeline.store.counts()["records"] == 200
    assert len(read_jsonl(tmp_path / "out" / "desk.jsonl")) == 200
    pipeline.close()
