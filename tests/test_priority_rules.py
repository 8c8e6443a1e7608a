"""The priority rules 6 (reach) and 7 (unanswered follow-ups), which may raise what rules 1-5 decided."""
from datetime import datetime, timezone

import pytest

from socialcrm.core.engine.learning.priority import prioritise
from socialcrm.core.sdk.model import Author, Influence, Record, Sentiment


def record(type_="rant", followers=12, sentiment="negative", influence=20, **extra):
    return Record(id="x:9", network="x", content="...", created_at=datetime(2026, 10, 1, tzinfo=timezone.utc),
                  author=Author(handle="kim", followers=followers), type=type_, sentiment=Sentiment(sentiment),
                  influence=Influence(influence), conversation="x:1", **extra)


def test_a_complaint_from_a_high_reach_author_rises_a_level_and_says_why():
    assert prioritise(record(followers=12), 70)[:2] == ("P3", "answer")
    priority, action, why = prioritise(record(followers=98_000), 70)
    assert (priority, action) == ("P2", "answer")
    assert why == ("priority P3 by rule 4 (support mention): a complaint to acknowledge; raised to P2 by rule 6 "
                   "(reach): a complaint from an author with 98,000 followers (high_reach 10,000) rises a level")
    assert prioritise(record(followers=98_000), 70, high_reach=100_000)[0] == "P3"
    assert prioritise(record("case", followers=50_000), 70)[0] == "P1"
    assert prioritise(record("case", followers=50_000, sentiment="neutral"), 70)[0] == "P2"  # a request, not a complaint
    assert prioritise(record("rave", followers=98_000, sentiment="positive"), 70)[0] == "P3"


@pytest.mark.parametrize("followups, expected", [(0, "P4"), (1, "P4"), (2, "P3"), (3, "P2"), (6, "P2")])
def test_unanswered_follow_ups_raise_priority_with_their_count(followups, expected):
    priority, action, why = prioritise(record("other", sentiment="neutral"), 70, unanswered_followups=followups)
    assert priority == expected
    if expected != "P4":
        assert action == "answer" and "rule 7 (follow-ups)" in why and "conversation x:1" in why


def test_follow_ups_never_lower_a_priority_nor_raise_spam_or_news():
    assert prioritise(record("case", influence=90), 70, unanswered_followups=3)[0] == "P1"
    assert prioritise(record("spam"), 70, unanswered_followups=5)[:2] == ("P4", "none")
    assert prioritise(record("news"), 70, unanswered_followups=5)[:2] == ("P4", "none")
    _, _, why = prioritise(record("other", sentiment="neutral"), 70, unanswered_followups=3)
    assert "the 3rd unanswered follow-up in conversation x:1 asks for at least P2" in why
