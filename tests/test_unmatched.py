"""Nothing addressed to the brand falls through: the ``[routing] unmatched`` fallback, its count, and the
Spanish and German complaints the content library used to miss (issue #16)."""
import json

import pytest
from click.testing import CliRunner

from socialcrm.core.cli.main import main
from socialcrm.core.engine.config import load_config
from socialcrm.core.sdk.errors import ConfigError

CONFIG = """
[brand]
name = "AcmeNet"
handles = ["@AcmeNet", "@AcmeNetHelp"]

[store]
url = "sqlite:///socialcrm.db"

[sources.file]
plugin = "jsonl"
path = "mentions.jsonl"

[sinks.desk]
plugin = "jsonl"
path = "out/desk.jsonl"

[sinks.trust]
plugin = "jsonl"
path = "out/trust.jsonl"

[[routes]]
name = "fraud"
when = { fraud = true }
sinks = ["trust", "desk"]

[[routes]]
name = "support"
when = { type = ["case", "rant"] }
sinks = ["desk"]
team = "care"
"""
FALLBACK = """
[routing]
unmatched = { sinks = ["desk"], team = "care" }
"""
#: The issue's examples: said to the brand, in English, Spanish (a SIM-swap fraud report) and German.
ADDRESSED = [
    ("1", "@AcmeNetHelp no service at all in my area", "en"),
    ("2", "@AcmeNetHelp me han hecho un duplicado de SIM sin mi permiso, no tengo línea desde anoche y me han "
          "vaciado la cuenta del banco. Necesito ayuda YA por favor", "es"),
    ("3", "@AcmeNetHelp seit drei Tagen kein Internet in Köln-Ehrenfeld. Hotline: 50 Minuten Warteschleife, dann "
          "aufgelegt. Geht's noch?", "de"),
    ("4", "@AcmeNet Rechnung für Oktober doppelt abgebucht, 2x 39,99 €. Kundenservice per Mail antwortet nicht. "
          "Wie bekomme ich das zurück?", "de"),
    ("5", "@AcmeNetHelp llevo una semana sin fibra en Valencia y nadie me da fecha. Pago 45€ al mes por NADA", "es"),
    ("6", "@AcmeNetHelp what time is it in the store", "en"),
]
NOT_ADDRESSED = [("7", "Watching the football with a cup of tea, AcmeNet on the telly", "en")]
SPAM = [("8", "@AcmeNetHelp FREE followers click here https://spam.example https://spam2.example giveaway", "en")]


def _mentions(items):
    return [{"network": "x", "id": i, "text": t, "lang": lang, "created_at": f"2026-10-01T10:0{i}:00Z",
             "author": {"id": f"u{i}", "handle": f"user{i}", "followers": 100}} for i, t, lang in items]


def _read(path):
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}


@pytest.fixture
def run(write_config, write_mentions, tmp_path):
    def go(text):
        path = write_config(text)
        write_mentions(tmp_path / "mentions.jsonl", _mentions(ADDRESSED + NOT_ADDRESSED + SPAM))
        result = CliRunner().invoke(main, ["run", "--once", "--config", str(path)])
        assert result.exit_code == 0, result.output
        return path, result.output
    return go


def test_every_post_addressed_to_the_brand_reaches_a_sink_with_the_fallback(run, tmp_path):
    path, output = run(CONFIG + FALLBACK)
    desk = _read(tmp_path / "out" / "desk.jsonl")
    assert {f"x:{i}" for i, _, _ in ADDRESSED} <= set(desk)
    assert "x:7" not in desk and "x:8" not in desk  # not addressed to the brand; spam is never a fallback's
    assert all(desk[f"x:{i}"]["team"] == "care" for i, _, _ in ADDRESSED if i != "2")  # 2: the fraud rule's
    fell_back = desk["x:6"]
    assert fell_back["type"] == "query"  # a question to the brand, a type none of this config's rules names
    assert any("[routing] unmatched fallback -> desk, team care" in reason for reason in fell_back["reasons"])
    # The Spanish SIM-swap report is fraud, and reaches the fraud team first.
    assert desk["x:2"]["fraud"] and "x:2" in _read(tmp_path / "out" / "trust.jsonl")
    assert "1 unrouted" in output  # the post not addressed to the brand (spam is noise, not counted)
    status = CliRunner().invoke(main, ["status", "--json", "--config", str(path)])
    assert json.loads(status.output)["unrouted"] == 1


def test_without_the_fallback_unmatched_posts_are_counted_unrouted(run, tmp_path):
    path, output = run(CONFIG)
    desk = _read(tmp_path / "out" / "desk.jsonl")
    # A question no rule names reaches no one without the fallback. (The issue's English example, "no
    # service at all in my area", is now learned as the case it is and reaches the desk by the support rule.)
    assert "x:6" not in desk
    assert desk["x:1"]["type"] == "case"
    assert any(reason.startswith("route 'support'") for reason in desk["x:1"]["reasons"])
    assert "2 unrouted" in output  # x:6 and the post not addressed to the brand
    status = CliRunner().invoke(main, ["status", "--config", str(path)])
    assert "unrouted: 2 records reach no sink" in status.output
    assert "(set [routing] unmatched to give them a fallback)" in status.output  # said, not eaten as markup


@pytest.mark.parametrize("native_id", ["2", "3", "4", "5"])
def test_spanish_and_german_complaints_are_cases_by_the_content_library(run, tmp_path, native_id):
    run(CONFIG)  # no fallback: the support rule itself must match them
    record = _read(tmp_path / "out" / "desk.jsonl")[f"x:{native_id}"]
    assert record["type"] == "case"
    assert any(reason.startswith("route 'support'") or reason.startswith("route 'fraud'")
               for reason in record["reasons"])


def test_the_fallback_must_name_a_configured_sink(write_config, plugins):
    with pytest.raises(ConfigError) as error:
        load_config(write_config(CONFIG + '[routing]\nunmatched = { sinks = ["nowhere"] }\n'), plugins)
    assert "[routing] unmatched.sinks: no sink named 'nowhere'" in str(error.value)


def test_the_demo_config_has_the_fallback(plugins, tmp_path):
    from socialcrm.core.services.demo import write_demo_config
    config = load_config(write_demo_config(tmp_path), plugins)
    assert config.routing.unmatched.sinks == ["helpdesk"] and config.incidents.enabled
