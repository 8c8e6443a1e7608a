"""One error shape for every failure: {code, status, message, errors: {field: [...]}}; body size limit; 5xx."""
from __future__ import annotations

import logging

import pytest

from socialcrm.api.errors import field_errors


def _shape(response, code):
    assert response.status_code == code
    assert response.content_type == "application/json"
    body = response.json
    assert set(body) == {"code", "status", "message", "errors"} and body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert all(isinstance(v, list) and v for v in body["errors"].values())
    return body


def test_unknown_route_and_wrong_method(api):
    _shape(api.client.get("/nowhere"), 404)
    body = _shape(api.client.delete("/records", headers=api.auth("read")), 405)
    assert body["status"] == "Method Not Allowed"


def test_validation_errors_name_each_field(api):
    body = _shape(api.client.post("/do-not-engage", json={"network": 5, "extra": True}, headers=api.auth("admin")), 422)
    assert body["errors"] == {"network": ["Not a valid string."], "author": ["Missing data for required field."],
                              "extra": ["Unknown field."]}
    assert body["message"].startswith("invalid input: network: Not a valid string.")
    listed = _shape(api.client.post("/dead-letters/replay", json={"ids": [1, "two", -3]}, headers=api.auth("write")), 422)
    assert listed["errors"] == {"ids[1]": ["Not a valid integer."], "ids[2]": ["Must be greater than or equal to 1."]}


def test_bodies_that_are_not_json_objects(api):
    for data, content_type in (("{nope", "application/json"), ("[1, 2]", "application/json"),
                               ("network=x", "application/x-www-form-urlencoded")):
        response = api.client.post("/erasures", data=data, content_type=content_type, headers=api.auth("admin"))
        assert response.status_code in (400, 415, 422), (data, response.status_code)
        _shape(response, response.status_code)


def test_body_size_limit_is_json_413(api):
    big = {"network": "x", "author": "someone", "padding": "x" * 5000}
    body = _shape(api.client.post("/erasures", json=big, headers=api.auth("admin")), 413)
    assert body["status"] == "Request Entity Too Large"
    small = api.client.post("/erasures", json={"network": "x", "author": "someone"}, headers=api.auth("admin"))
    assert small.status_code == 200


def test_an_unexpected_failure_is_a_json_500_and_logged(api, caplog, monkeypatch):
    api.app.testing = False  # as in production: the error is answered, not raised into the test

    def broken(**_):
        raise RuntimeError("database on fire")
    monkeypatch.setattr(api.store, "records_page", broken)
    with caplog.at_level(logging.ERROR, logger="socialcrm.api.errors"):
        response = api.client.get("/records", headers=api.auth("read"))
    body = _shape(response, 500)
    assert body["message"] == "internal error: the server log has the details" and body["errors"] == {}
    assert "database on fire" not in response.get_data(as_text=True)
    assert "unhandled error in GET /records: RuntimeError" in caplog.text and "database on fire" in caplog.text


@pytest.mark.parametrize("messages,expected", [
    ({"json": {"a": ["bad"], "b": {"c": ["worse"]}}}, {"a": ["bad"], "b.c": ["worse"]}),
    ({"json": {"_schema": ["whole"]}}, {"body": ["whole"]}),
    ({"query": {"ids": {"0": ["nope"]}}}, {"ids[0]": ["nope"]}),
    ({"0": {"text": ["x"]}}, {"[0].text": ["x"]}),
    (["plain"], {"body": ["plain"]}),
])
def test_field_errors_flattening(messages, expected):
    assert field_errors(messages) == expected
