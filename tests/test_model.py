from datetime import datetime, timezone

import pytest
from marshmallow import ValidationError

from socialcrm import Delivery, DeliveryStatus, Record
from socialcrm.core.sdk.model import Author, Sentiment, describe_validation_error, mention_from_json


def test_mention_from_json_normalises_to_utc_and_keeps_raw(mention_json):
    data = mention_json("42", "hello", created_at="2026-10-01T12:00:00+02:00", repost_of="x:7")
    mention = mention_from_json(data)
    assert mention.id == "x:42"
    assert mention.canonical_id == "x:7"
    assert mention.created_at == datetime(2026, 10, 1, 10, 0, tzinfo=timezone.utc)
    assert mention.raw is data
    assert mention.author.followers == 100


def test_mention_errors_name_each_field():
    with pytest.raises(ValidationError) as info:
        mention_from_json({"network": "x", "text": "hi", "author": {"followers": -3}})
    message = describe_validation_error(info.value)
    assert "id: Missing data" in message
    assert "created_at: Missing data" in message
    assert "author.followers" in message


def test_mention_must_be_an_object():
    with pytest.raises(ValidationError, match="JSON object"):
        mention_from_json(["not", "a", "mention"])


def test_record_round_trips_through_dict():
    record = Record(id="x:1", network="x", content="c", created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                    author=Author(handle="h", followers=5), sentiment=Sentiment("negative", -0.5),
                    route=["desk"], reasons=["why"])
    data = record.to_dict()
    assert data["created_at"] == "2026-01-02T03:04:05Z"
    assert Record.from_dict(data) == record


def test_delivery_constructors():
    assert Delivery.delivered("a", "500X").status is DeliveryStatus.DELIVERED
    retry = Delivery.retry("a", "503", retry_after=2)
    assert (retry.status, retry.retry_after) == (DeliveryStatus.RETRY, 2)
    assert Delivery.rejected("a", "bad field").error == "bad field"


def _variants(base):
    """Well-formed and unusual variants of one mention, to hold the fast path to the schema."""
    yield base
    yield {**base, "created_at": "2026-10-01T10:00:00"}            # naive: the schema assumes UTC
    yield {**base, "created_at": "2026-10-01"}                     # a date only
    yield {**base, "created_at": "yesterday"}
    yield {**base, "author": {"handle": "h", "followers": "12"}}   # a count as a string
    yield {**base, "author": {"handle": "h", "followers": -1}}
    yield {**base, "author": {"handle": 7}}
    yield {**base, "author": "someone"}
    yield {**base, "engagement": {"likes": 1.5}}
    yield {**base, "engagement": {"likes": True}}
    yield {**base, "addressed_to_brand": "yes"}
    yield {**base, "repost_of": 12}
    yield {**base, "network": "X Twitter"}
    yield {**base, "id": ""}
    yield {**base, "text": None}
    yield {k: v for k, v in base.items() if k != "author"}
    yield {**base, "unknown_key": {"ignored": True}}


def test_the_fast_path_accepts_and_rejects_exactly_what_the_schema_does():
    import json
    from pathlib import Path

    from socialcrm.core.sdk.model import _MENTION_SCHEMA

    samples = Path(__file__).resolve().parents[1] / "samples" / "mentions.jsonl"
    bases = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()[:40]]
    checked = 0
    for base in bases:
        for variant in _variants(base):
            try:
                expected = _MENTION_SCHEMA.load(variant)
                expected.raw = variant
            except ValidationError as exc:
                with pytest.raises(ValidationError) as info:
                    mention_from_json(variant)
                assert info.value.messages == exc.messages
            else:
                assert mention_from_json(variant) == expected
            checked += 1
    assert checked == 40 * 17
