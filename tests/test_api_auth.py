"""Bearer tokens with scopes: 401 without a valid token, 403 without the scope, secrets never logged."""
from __future__ import annotations

import logging

import pytest

from socialcrm.api import create_app
from socialcrm.api.auth import find_token
from socialcrm.core.engine.config import ApiToken, load_config
from socialcrm.core.sdk.errors import ConfigError

# (method, path, json body, scope needed): every operation that needs a token.
GUARDED = [
    ("get", "/plugins", None, "read"),
    ("get", "/sources", None, "read"),
    ("post", "/sources/file/poll", None, "write"),
    ("get", "/records", None, "read"),
    ("get", "/records/x:1", None, "read"),
    ("post", "/records/x:1/feedback", {"type": "case"}, "write"),
    ("get", "/dead-letters", None, "read"),
    ("get", "/dead-letters/1", None, "read"),
    ("post", "/dead-letters/replay", {"all": True}, "write"),
    ("post", "/dead-letters/1/replay", None, "write"),
    ("get", "/quarantine", None, "read"),
    ("get", "/quarantine/1", None, "read"),
    ("post", "/quarantine/replay", {"all": True}, "write"),
    ("post", "/quarantine/1/replay", {}, "write"),
    ("get", "/stats", None, "read"),
    ("get", "/metrics", None, "read"),
    ("post", "/erasures", {"network": "x", "author": "someone"}, "admin"),
    ("get", "/do-not-engage", None, "admin"),
    ("post", "/do-not-engage", {"network": "x", "author": "someone"}, "admin"),
    ("delete", "/do-not-engage/" + "a" * 64, None, "admin"),
]
BELOW = {"read": None, "write": "read", "admin": "write"}


def test_every_guarded_operation_needs_a_token_with_its_scope(api):
    for method, path, body, scope in GUARDED:  # one app for all: building one per case costs 0.5 s
        where = f"{method.upper()} {path}"
        call = getattr(api.client, method)
        missing = call(path, json=body)
        assert missing.status_code == 401, where
        assert missing.json["errors"] == {"Authorization": ["missing bearer token"]}, where
        assert missing.headers["WWW-Authenticate"].startswith("Bearer"), where
        wrong = call(path, json=body, headers={"Authorization": "Bearer not-a-token-0123456789abcdef"})
        assert wrong.status_code == 401 and wrong.json["errors"] == {"Authorization": ["unknown token"]}, where
        basic = call(path, json=body, headers={"Authorization": f"Basic {api.tokens[scope]}"})
        assert basic.status_code == 401, where
        if BELOW[scope]:
            weak = call(path, json=body, headers=api.auth(BELOW[scope]))
            assert weak.status_code == 403, where
            assert weak.json["errors"] == {"Authorization": [f"needs scope {scope!r}"]}, where
            assert weak.json["message"].startswith("this token ("), where
        ok = call(path, json=body, headers=api.auth(scope))
        assert ok.status_code not in (401, 403), (where, ok.json)
        higher = call(path, json=body, headers=api.auth("admin"))  # admin holds write, which holds read
        assert higher.status_code not in (401, 403), where


def test_every_operation_in_the_spec_is_covered_above(api):
    spec = api.client.get("/openapi.json").json
    guarded = {(m, p) for p, item in spec["paths"].items() for m, op in item.items()
               if m != "parameters" and op.get("security")}
    normalised = {(m, p.replace("x:1", "{record_id}").replace("/1", "/{outbox_id}").replace("file", "{name}")
                   .replace("a" * 64, "{key}").replace("/quarantine/{outbox_id}", "/quarantine/{item_id}"))
                  for m, p, _, _ in GUARDED}
    assert guarded == normalised
    public = {(m, p) for p, item in spec["paths"].items() for m, op in item.items()
              if m != "parameters" and not op.get("security")}
    assert public == {("get", "/health"), ("get", "/docs"), ("post", "/webhooks/{name}")}


def test_health_docs_and_spec_need_no_token(api):
    assert api.client.get("/health").json == {"status": "ok"}
    assert api.client.get("/openapi.json").status_code == 200
    assert api.client.get("/docs").status_code == 200


def test_docs_can_be_guarded(api_env, write_config, plugins):
    config = load_config(write_config(api_env.replace("max_body_bytes", "public_docs = false\nmax_body_bytes")), plugins)
    client = create_app(config, plugins).test_client()
    assert client.get("/openapi.json").status_code == 401 and client.get("/docs").status_code == 401
    headers = {"Authorization": "Bearer reader-token-0123456789abcdef"}
    assert client.get("/openapi.json", headers=headers).status_code == 200
    assert client.get("/health").status_code == 200


def test_tokens_from_the_environment(api_env, write_config, plugins, monkeypatch):
    monkeypatch.setenv("SOCIALCRM_API_TOKENS", "grafana:read:graf-token-0123456789, ci:read+write:ci-token:with:colons-0")
    config = load_config(write_config(api_env), plugins)
    names = {t.name: t for t in config.api.tokens}
    assert names["grafana"].scopes == {"read"} and names["ci"].token == "ci-token:with:colons-0"
    assert names["ci"].scopes == {"read", "write"} and "graf-token-0123456789" in config.secrets
    client = create_app(config, plugins).test_client()
    assert client.get("/records", headers={"Authorization": "Bearer graf-token-0123456789"}).status_code == 200
    assert client.post("/sources/file/poll", headers={"Authorization": "Bearer graf-token-0123456789"}
                       ).status_code == 403


def test_bad_token_config_names_the_field_without_the_token(api_env, write_config, plugins, monkeypatch):
    monkeypatch.setenv("SOCIALCRM_API_TOKENS", "ci:root:sekrit-token-0123456789,short:read:abc")
    text = api_env.replace('scopes = ["read"] }', 'scopes = ["reed"] }').replace(
        "max_body_bytes = 4096", 'max_body_bytes = 4096\ntokens_typo = 1')
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(text), plugins)
    message = str(caught.value)
    assert "[api] tokens.0.scopes.0: Must be one of: read, write, admin." in message
    assert "[api] tokens_typo: unknown field (a typo?)" in message
    assert "SOCIALCRM_API_TOKENS: entry 1 is not NAME:SCOPE[+SCOPE]:TOKEN" in message
    assert "SOCIALCRM_API_TOKENS: entry 2 (short): token too short" in message
    assert "sekrit" not in message and "abc" not in message.split("entry 2")[1]


def test_duplicate_and_short_tokens_are_config_errors(api_env, write_config, plugins, monkeypatch):
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(api_env.replace('name = "desk"', 'name = "reader"')), plugins)
    assert "[api] tokens: token names must be unique (twice: reader)" in str(caught.value)
    monkeypatch.setenv("SOCIALCRM_TEST_READ", "short")
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(api_env), plugins)
    assert "[api] tokens.0.token: too short: use at least 16 random characters" in str(caught.value)


def test_find_token_compares_every_token_in_constant_time(monkeypatch):
    import hmac
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    tokens = [ApiToken("a", "token-a-0123456789abcdef", frozenset({"read"})),
              ApiToken("b", "token-b-0123456789abcdef", frozenset({"admin"}))]
    assert find_token("token-a-0123456789abcdef", tokens).name == "a"
    assert len(calls) == 2  # no early exit on a match
    assert find_token("token-ü-nicode", tokens) is None


def test_no_token_or_secret_reaches_a_log_line(api, mention_json, caplog):
    from socialcrm.api.webhooks import sign
    caplog.set_level(logging.DEBUG)
    for scope in ("read", "write", "admin"):
        api.client.get("/records", headers=api.auth(scope))
        api.client.post("/erasures", json={"network": "x", "author": "z"}, headers=api.auth(scope))
    api.client.get("/records", headers={"Authorization": "Bearer wrong-token-0123456789abcdef"})
    api.client.get("/records", query_string={"limit": "x"}, headers=api.auth("read"))
    body = b'{"network": "x", "id": "1", "text": "hello", "created_at": "2026-09-20T10:00:00Z"}'
    stamp = str(int(api.now))
    api.client.post("/webhooks/partner", data=body, headers={
        "X-Socialcrm-Timestamp": stamp, "X-Socialcrm-Signature": sign(api.hook_secret, stamp, body)},
        content_type="application/json")
    api.client.post("/webhooks/partner", data=body, headers={
        "X-Socialcrm-Timestamp": stamp, "X-Socialcrm-Signature": "sha256=" + "0" * 64},
        content_type="application/json")
    text = caplog.text
    assert "refused GET /records: unknown bearer token" in text and "lacks the 'admin' scope" in text
    assert "GET /records 200 (reader)" in text  # the access log names the token, never its value
    for secret in (*api.tokens.values(), "wrong-token-0123456789abcdef", api.hook_secret):
        assert secret not in text
