from datetime import datetime, timezone

from socialcrm.core.engine.config import Route
from socialcrm.core.sdk.model import Influence, Record
from socialcrm.core.engine.routing import route_record

NOW = datetime(2026, 10, 1, tzinfo=timezone.utc)
ROUTES = [
    Route("vip", {"min_influence": 70}, ["exec"], "exec-team", continue_=True),
    Route("support", {"type": ["case", "query", "rant"]}, ["desk"], "care"),
    Route("everything", {}, ["archive"]),
    Route("press", {"type": ["news"]}, ["pr"]),
]
SINKS = {"exec", "desk", "archive", "pr"}


def record(type_="case", influence=10):
    return Record(id="x:1", network="x", content="c", created_at=NOW, type=type_, influence=Influence(influence))


def test_first_match_wins():
    r = record("case")
    route_record(r, ROUTES, SINKS)
    assert (r.route, r.team) == (["desk"], "care")
    assert "route 'support': type is case -> desk, team care" in r.reasons


def test_continue_lets_later_rules_add_sinks():
    r = record("case", influence=90)
    route_record(r, ROUTES, SINKS)
    assert r.route == ["exec", "desk"] and r.team == "exec-team"


def test_noise_is_only_routed_by_a_rule_that_names_it():
    spam = record("spam")
    route_record(spam, ROUTES, SINKS)
    assert spam.route == [] and "noise is routed only by a rule naming its type" in spam.reasons[-1]
    news = record("news")
    route_record(news, ROUTES, SINKS)
    assert news.route == ["pr"]


def test_disabled_sinks_are_left_out():
    r = record("rave")
    route_record(r, ROUTES, {"desk"})
    assert r.route == [] and "route 'everything': matches everything -> archive" in r.reasons
