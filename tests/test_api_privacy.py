"""Erasure of one author's data (API and CLI), the do-not-engage list, and the ``[privacy]`` block."""
from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from socialcrm.core.cli.main import main
from socialcrm.core.engine.config import load_config
from socialcrm.core.engine.donotengage import author_key
from socialcrm.core.sdk.errors import ConfigError
from socialcrm.core.store import testrows
from socialcrm.core.store.schema import audit, feedback, mentions, outbox, records


def _by(mention_json, native_id, handle, text="@BrightwaveHelp my WaveBox doesn't work, help", network="x"):
    m = mention_json(native_id, text, network=network)
    m["author"]["handle"] = handle
    return m


def _seed(api, mention_json):
    api.listen([_by(mention_json, "1", "@Carol"), _by(mention_json, "2", "carol", "thanks @Brightwave, love it"),
                _by(mention_json, "3", "dave"), _by(mention_json, "4", "carol", network="reddit")])
    api.pipeline.deliver()
    api.listen([_by(mention_json, "5", "CAROL")])  # not delivered yet: a pending delivery
    api.client.post("/records/x:1/feedback", json={"type": "rant"}, headers=api.auth("write"))


def _rows(api, table, **where):
    return testrows.count(api.store, table, **where)


def test_erasure_removes_everything_about_one_author_and_audits_without_the_handle(api, mention_json):
    _seed(api, mention_json)
    response = api.client.post("/erasures", json={"network": "x", "author": "@carol"}, headers=api.auth("admin"))
    assert response.status_code == 200, response.json
    assert response.json == {"mentions": 3, "records": 3, "pending_deliveries": 1, "deliveries": 2, "feedback": 1,
                             "audit_redacted": 1}
    for table in (mentions, records):
        assert _rows(api, table) == 2  # dave on x, carol on reddit (another network: another person)
    assert api.store.get_record("x:3") is not None and api.store.get_record("reddit:4") is not None
    assert _rows(api, outbox, record_id="x:1") == 0 and _rows(api, feedback) == 0
    entries = testrows.rows(api.store, select(audit).order_by(audit.c.id))
    raw = testrows.scalars(api.store, select(mentions.c.raw).where(mentions.c.network == "x"))
    assert all("carol" not in (r or "").lower() for r in raw)
    erasure = entries[-1]
    assert erasure["action"] == "author.erase" and erasure["actor"] == "ops"
    detail = json.loads(erasure["detail"])
    assert detail["author_hash"] == author_key("x", "carol", "socialcrm") and detail["counts"]["records"] == 3
    assert all("carol" not in (e["detail"] or "").lower() and "x:1" not in (e["detail"] or "") for e in entries)
    assert json.loads(entries[0]["detail"]) == {"redacted": "the author's data was erased"}
    again = api.client.post("/erasures", json={"network": "x", "author": "carol"}, headers=api.auth("admin"))
    assert again.json["records"] == 0


def test_erasure_input_errors(api):
    bad = api.client.post("/erasures", json={"network": "X Net", "author": "two words"}, headers=api.auth("admin"))
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"network", "author"}
    missing = api.client.post("/erasures", json={}, headers=api.auth("admin"))
    assert missing.json["errors"] == {"network": ["Missing data for required field."],
                                      "author": ["Missing data for required field."]}


def test_erase_command(api, mention_json, write_config, api_env):
    _seed(api, mention_json)
    path = write_config(api_env)
    result = CliRunner().invoke(main, ["erase", "--config", str(path), "--author", "Carol", "--network", "x",
                                       "--yes", "--actor", "dpo", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["records"] == 3 and _rows(api, records) == 2
    refused = CliRunner().invoke(main, ["erase", "--config", str(path), "--author", "dave", "--network", "x"],
                                 input="n\n")
    assert refused.exit_code == 1 and api.store.get_record("x:3") is not None
    actors = testrows.scalars(api.store, select(audit.c.actor).where(audit.c.action == "author.erase"))
    assert actors == ["dpo"]


def test_do_not_engage_keeps_new_mentions_out_of_every_sink(api, mention_json):
    _seed(api, mention_json)
    added = api.client.post("/do-not-engage", json={"network": "x", "author": "@Dave"}, headers=api.auth("admin"))
    assert added.status_code == 200
    key = author_key("x", "dave", "socialcrm")
    assert added.json == {"author_key": key, "added": True, "cancelled_deliveries": 0}
    api.listen([_by(mention_json, "6", "dave"), _by(mention_json, "7", "erin")])
    held = api.store.get_record("x:6")
    assert held.type == "case" and held.route == [] and held.reasons[-1].startswith("do-not-engage:")
    assert api.store.get_record("x:7").route == ["desk"]
    # rerouting by feedback does not slip past the list
    rerouted = api.client.post("/records/x:6/feedback", json={"route": ["desk"]}, headers=api.auth("write")).json
    assert rerouted["record"]["route"] == [] and rerouted["added_sinks"] == []
    listed = api.client.get("/do-not-engage", headers=api.auth("admin")).json
    assert [(e["origin"], e["author_key"]) for e in listed] == [
        ("config", author_key("x", "blocked_by_config", "socialcrm")), ("api", key)]
    assert listed[1]["added_by"] == "ops" and "dave" not in json.dumps(listed).lower()
    again = api.client.post("/do-not-engage", json={"network": "x", "author": "dave"}, headers=api.auth("admin"))
    assert again.json["added"] is False
    assert api.client.delete(f"/do-not-engage/{key}", headers=api.auth("admin")).status_code == 204
    api.listen([_by(mention_json, "8", "dave")])
    assert api.store.get_record("x:8").route == ["desk"]
    assert api.client.delete(f"/do-not-engage/{key}", headers=api.auth("admin")).status_code == 404
    from_config = api.client.delete(f"/do-not-engage/{listed[0]['author_key']}", headers=api.auth("admin"))
    assert from_config.status_code == 409
    assert api.client.delete("/do-not-engage/" + "Z" * 64, headers=api.auth("admin")).status_code == 404


def test_do_not_engage_cancels_deliveries_not_yet_sent(api, mention_json):
    api.listen([_by(mention_json, "1", "frank"), _by(mention_json, "2", "frank")])
    response = api.client.post("/do-not-engage", json={"network": "x", "author": "Frank"}, headers=api.auth("admin"))
    assert response.json["cancelled_deliveries"] == 2 and _rows(api, outbox) == 0
    assert api.pipeline.deliver().total() == 0


def test_privacy_settings_live_in_their_own_block(write_config, base_config, plugins):
    config = load_config(write_config(base_config + '[privacy]\ndo_not_engage = ["x:@someone"]\nhash_salt = "pepper"\n'),
                         plugins)
    assert (config.privacy.do_not_engage, config.privacy.hash_salt) == (["x:@someone"], "pepper")
    assert config.deprecations == ()
    defaults = load_config(write_config(base_config), plugins).privacy
    assert (defaults.do_not_engage, defaults.hash_salt) == ([], "socialcrm")


OLD_PLACE = '\n[api]\ndo_not_engage = ["x:@someone"]\nhash_salt = "pepper"\n'
DEPRECATION = ("socialcrm.toml [api] do_not_engage, hash_salt: deprecated, the privacy settings moved; "
               "write them as [privacy] do_not_engage, hash_salt (still read from [api] for now)")


def test_the_old_api_keys_still_work_with_one_deprecation_message(write_config, base_config, plugins, caplog):
    path = write_config(base_config + OLD_PLACE)
    with caplog.at_level(logging.WARNING, logger="socialcrm.core.engine.config"):
        config = load_config(path, plugins)
    assert (config.privacy.do_not_engage, config.privacy.hash_salt) == (["x:@someone"], "pepper")
    assert config.deprecations == (DEPRECATION,)
    assert [r.getMessage() for r in caplog.records] == [DEPRECATION]
    checked = CliRunner().invoke(main, ["check", "--config", str(path)])
    assert checked.exit_code == 0 and f"warning: {DEPRECATION}" in checked.output


def test_a_privacy_setting_in_both_places_is_an_error_naming_both(write_config, base_config, plugins):
    with pytest.raises(ConfigError) as info:
        load_config(write_config(base_config + OLD_PLACE + '\n[privacy]\nhash_salt = "salt"\n'), plugins)
    assert str(info.value) == ("invalid configuration:\n  socialcrm.toml [api] hash_salt: also set as [privacy] "
                               "hash_salt: keep only [privacy] hash_salt ([api] hash_salt is its old, deprecated place)")


def test_a_bad_privacy_setting_is_named_where_it_was_written(write_config, base_config, plugins):
    with pytest.raises(ConfigError, match=r"\[api\] do_not_engage.0: give NETWORK:HANDLE"):
        load_config(write_config(base_config + '\n[api]\ndo_not_engage = ["someone"]\n'), plugins)
    with pytest.raises(ConfigError, match=r"\[privacy\] do_not_engage.0: give NETWORK:HANDLE"):
        load_config(write_config(base_config + '\n[privacy]\ndo_not_engage = ["someone"]\n'), plugins)
