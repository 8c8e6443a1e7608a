from datetime import datetime, timezone

from socialcrm.core.engine.config import PrivacyConfig, Route
from socialcrm.core.engine.donotengage import REASON, author_key
from socialcrm.core.sdk.model import Author, Influence, Record
from socialcrm.core.engine.routing import route, route_record

NOW = datetime(2026, 10, 1, tzinfo=timezone.utc)
ROUTES = [
    Route("vip", {"min_influence": 70}, ["exec"], "exec-team", continue_=True),
    Route("support", {"type": ["case", "query", "rant"]}, ["desk"], "care"),
    Route("everything", {}, ["archive"]),
    Route("press", {"type": ["news"]}, ["pr"]),
]
SINKS = {"exec", "desk", "archive", "pr"}


def record(type_="case", influence=10, handle=None):
    return Record(id=f"x:{handle or 1}", network="x", content="c", created_at=NOW, type=type_,
                  influence=Influence(influence), author=Author(handle=handle))


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


def test_route_decides_by_the_rules_then_holds_back_the_do_not_engage_list():
    privacy = PrivacyConfig(do_not_engage=["x:@Listed"], hash_salt="pepper")
    listed, stored, free, anonymous = (record(handle="listed"), record(handle="@Stored"), record(handle="erin"),
                                       record())
    held = route([listed, stored, free, anonymous], ROUTES, SINKS, privacy, {author_key("x", "stored", "pepper")})
    assert held == 2
    for r in (listed, stored):  # the rule's reason stays, the hold-back comes after it; the team is kept
        assert r.route == [] and r.team == "care"
        assert r.reasons[-2:] == ["route 'support': type is case -> desk, team care", REASON]
    assert free.route == anonymous.route == ["desk"] and REASON not in free.reasons + anonymous.reasons


def test_route_keys_authors_with_the_privacy_salt():
    listed = record(handle="listed")
    assert route([listed], ROUTES, SINKS, PrivacyConfig(), {author_key("x", "listed", "another salt")}) == 0
    assert listed.route == ["desk"]
