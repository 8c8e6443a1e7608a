"""The API as people use it: a misspelt query parameter is an error naming it, and /metrics labels
routes the way people read URLs."""
import pytest

from socialcrm.api.metrics import url_template

LIST_ENDPOINTS = ["/records", "/dead-letters", "/quarantine", "/stats", "/sources", "/plugins", "/do-not-engage"]


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_an_unknown_query_parameter_is_a_422_naming_it(api, path):
    response = api.client.get(f"{path}?priorty=P1", headers=api.auth("admin"))
    assert response.status_code == 422, response.json
    assert list(response.json["errors"]) == ["priorty"]
    assert response.json["errors"]["priorty"][0].startswith("unknown query parameter (this endpoint takes")
    assert "priorty: unknown query parameter" in response.json["message"]


def test_the_422_lists_the_parameters_the_endpoint_takes(api):
    response = api.client.get("/records?priorty=P1&team=care", headers=api.auth("read"))
    assert response.status_code == 422
    takes = response.json["errors"]["priorty"][0]
    assert "priority" in takes and "team" in takes and "cursor" in takes
    none = api.client.get("/plugins?verbose=1", headers=api.auth("read")).json["errors"]
    assert none == {"verbose": ["unknown query parameter (this endpoint takes none)"]}


def test_a_known_query_parameter_still_filters(api):
    response = api.client.get("/records?priority=P1", headers=api.auth("read"))
    assert response.status_code == 200 and response.json["items"] == []


def test_metrics_label_routes_with_their_url_templates(api):
    api.client.get("/dead-letters/12345", headers=api.auth("read"))
    api.client.get("/records", headers=api.auth("read"))
    text = api.client.get("/metrics", headers=api.auth("read")).get_data(as_text=True)
    assert 'route="/dead-letters/{outbox_id}"' in text
    assert 'route="/records"' in text
    assert "<int" not in text


@pytest.mark.parametrize("rule, template", [
    ("/dead-letters/<int(min=1, max=9223372036854775807):outbox_id>/replay", "/dead-letters/{outbox_id}/replay"),
    ("/records/<path:record_id>/feedback", "/records/{record_id}/feedback"),
    ("/do-not-engage/<string(length=64):key>", "/do-not-engage/{key}"),
    ("/sources/<name>/poll", "/sources/{name}/poll"),
    ("/health", "/health"),
])
def test_url_templates_read_as_the_openapi_spec_writes_them(rule, template):
    assert url_template(rule) == template

