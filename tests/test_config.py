import pytest
from click.testing import CliRunner

from socialcrm.core.cli.main import main
from socialcrm.core.engine.config import load_config
from socialcrm.core.sdk.errors import ConfigError


def problems(write_config, plugins, text):
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text), plugins)
    return str(info.value)


def test_base_config_loads(config):
    assert config.brand.name == "Brightwave"
    assert [s.instance for s in config.sources] == ["file"]
    assert [s.plugin for s in config.sinks] == ["jsonl", "jsonl"]
    assert config.sinks[0].max_batch == 500  # the plugin's own limit when the block sets none
    assert config.routes[0].when == {"type": ["case", "query", "rant"]}
    assert config.store_url.endswith("/socialcrm.db") and config.store_url.startswith("sqlite:////")


def test_unknown_key_in_a_plugin_block_names_file_block_and_field(write_config, plugins):
    text = """
    [brand]
    name = "B"
    [sinks.desk]
    plugin = "jsonl"
    path = "x.jsonl"
    fsnyc = true
    """
    assert "socialcrm.toml [sinks.desk] fsnyc: unknown field (a typo?)" in problems(write_config, plugins, text)


def test_every_problem_is_reported_at_once(write_config, plugins):
    text = """
    [brand]
    handles = "not a list"
    [store]
    url = "nonsense"
    [sources.feed]
    plugin = "nosuch"
    [sinks.desk]
    plugin = "jsonl"
    max_batch = 0
    [[routes]]
    name = "r"
    when = { type = ["case", "complaint"] }
    sinks = ["desk", "crm"]
    """
    message = problems(write_config, plugins, text)
    assert "[brand] name: Missing data for required field." in message
    assert "[brand] handles: Not a valid list." in message
    assert "[store] url: not a database URL" in message
    assert "[sources.feed] plugin: no source plugin named 'nosuch' (installed: " in message
    assert "jsonl" in message.split("no source plugin named 'nosuch' (installed: ")[1].split(")")[0]
    assert "[sinks.desk] max_batch: Must be greater than or equal to 1." in message
    assert "[routes.r] when.type.1: Must be one of" in message
    assert "[routes.r] sinks: no sink named 'crm'" in message


def test_plugin_schema_errors_name_the_field(write_config, plugins):
    text = """
    [brand]
    name = "B"
    [sources.feed]
    plugin = "jsonl"
    page_size = "many"
    """
    message = problems(write_config, plugins, text)
    assert "[sources.feed] path: Missing data for required field." in message
    assert "[sources.feed] page_size: Not a valid integer." in message


def test_env_vars_fill_values_and_are_remembered_as_secrets(write_config, plugins, monkeypatch):
    monkeypatch.setenv("DESK_PATH", "secret-desk.jsonl")
    text = """
    [brand]
    name = "B"
    [sinks.desk]
    plugin = "jsonl"
    path = "${DESK_PATH}"
    [sinks.other]
    plugin = "jsonl"
    path = "${UNSET_PATH:-fallback.jsonl}"
    """
    config = load_config(write_config(text), plugins)
    assert config.sinks[0].options["path"] == "secret-desk.jsonl"
    assert config.sinks[1].options["path"] == "fallback.jsonl"
    assert "secret-desk.jsonl" in config.secrets


def test_missing_env_var_names_the_variable(write_config, plugins, monkeypatch):
    monkeypatch.delenv("ZENDESK_TOKEN", raising=False)
    text = """
    [brand]
    name = "B"
    [sinks.desk]
    plugin = "jsonl"
    path = "${ZENDESK_TOKEN}"
    """
    message = problems(write_config, plugins, text)
    assert "[sinks.desk] path: environment variable ZENDESK_TOKEN is not set (export ZENDESK_TOKEN=...)" in message


def test_invalid_toml_and_missing_file(write_config, plugins, tmp_path):
    assert "not valid TOML" in problems(write_config, plugins, "[brand\nname=")
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml", plugins)


def test_learning_terms_per_language(write_config, plugins):
    text = """
    [brand]
    name = "B"
    [learning.terms]
    case = ["router light is red"]
    rave = { en = ["chuffed"], es = ["me encanta"] }
    """
    config = load_config(write_config(text), plugins)
    assert config.learning.terms == {"case": {"en": ["router light is red"]},
                                     "rave": {"en": ["chuffed"], "es": ["me encanta"]}}
    bad = "[brand]\nname = 'B'\n[learning.terms]\ncase = 3\nmood = ['x']\n"
    message = problems(write_config, plugins, bad)
    assert "[learning.terms] case: give a list of strings" in message
    assert "[learning] terms.mood.key: Must be one of" in message


def test_cli_refuses_to_start_on_invalid_config(write_config):
    path = write_config("[brand]\nname = 'B'\n[sinks.desk]\nplugin = 'jsonl'\n")
    result = CliRunner().invoke(main, ["run", "--once", "--config", str(path)])
    assert result.exit_code == 2
    assert "socialcrm.toml [sinks.desk] path: Missing data for required field." in result.output


def test_a_block_left_out_takes_the_defaults_its_dataclass_declares(write_config, plugins, monkeypatch):
    from socialcrm.core.engine.config import API_TOKENS_ENV, ApiConfig, LearningConfig, SinkConfig, SourceConfig

    monkeypatch.delenv(API_TOKENS_ENV, raising=False)
    config = load_config(write_config("""
    [brand]
    name = "B"
    [sources.file]
    plugin = "jsonl"
    path = "m.jsonl"
    [sinks.desk]
    plugin = "jsonl"
    path = "x.jsonl"
    max_batch = 7
    """), plugins)
    assert config.learning == LearningConfig()
    assert config.api == ApiConfig()
    assert config.brand.handles == [] and config.brand.competitors == []
    assert config.sources == [SourceConfig(instance="file", plugin="jsonl", options=config.sources[0].options)]
    assert config.sinks == [SinkConfig(instance="desk", plugin="jsonl", options=config.sinks[0].options,
                                       max_batch=7)]


def test_settings_are_loaded_into_their_dataclasses(write_config, plugins):
    config = load_config(write_config("""
    [brand]
    name = "B"
    [learning]
    languages = ["en", "es"]
    high_influence = 50
    [[api.tokens]]
    name = "ops"
    token = "0123456789abcdef0123"
    scopes = ["read", "admin"]
    [sinks.desk]
    plugin = "jsonl"
    path = "x.jsonl"
    max_batch = 100000
    breaker_threshold = 2
    [[routes]]
    name = "all"
    sinks = ["desk"]
    continue = true
    """), plugins)
    assert config.learning.languages == ("en", "es") and config.learning.high_influence == 50
    assert config.api.tokens[0].scopes == frozenset({"read", "admin"})
    assert config.sinks[0].max_batch == 500  # never more than the plugin's own limit
    assert config.sinks[0].breaker_threshold == 2
    assert (config.routes[0].name, config.routes[0].continue_, config.routes[0].team) == ("all", True, None)


def test_host_key_errors_do_not_hide_plugin_field_errors(write_config, plugins):
    text = """
    [brand]
    name = "B"
    [sinks.desk]
    plugin = "jsonl"
    max_attempts = 0
    fsnyc = true
    """
    message = problems(write_config, plugins, text)
    assert "[sinks.desk] max_attempts: Must be greater than or equal to 1." in message
    assert "[sinks.desk] fsnyc: unknown field (a typo?)" in message
    assert "[sinks.desk] path: Missing data for required field." in message


def test_one_invalid_sink_does_not_make_routes_report_it_missing(write_config, plugins):
    text = """
    [brand]
    name = "B"
    [sinks.desk]
    plugin = "jsonl"
    max_batch = 0
    path = "desk.jsonl"
    [[routes]]
    name = "support"
    sinks = ["desk"]
    [[routes]]
    name = "other"
    sinks = ["crm"]
    """
    message = problems(write_config, plugins, text)
    assert "[sinks.desk] max_batch: Must be greater than or equal to 1." in message
    assert "no sink named 'desk'" not in message
    assert "[routes.other] sinks: no sink named 'crm' (sinks: desk)" in message


@pytest.mark.parametrize("plugin, options, field, variable, not_also", [
    # the webhook sink would add "Shorter than minimum length 8." for the empty value
    ("webhook", {"url": "http://127.0.0.1:9/hook"}, "secret", "HOOK_SECRET", "Shorter than minimum length"),
    # Zendesk would call a credential set to an unset variable "missing"
    ("zendesk", {"subdomain": "acme", "email": "agent@example.com"}, "api_token", "ZENDESK_API_TOKEN", "missing"),
])
def test_an_unset_variable_is_its_fields_one_message(write_config, plugins, monkeypatch, plugin, options, field,
                                                       variable, not_also):
    monkeypatch.delenv(variable, raising=False)
    lines = "".join(f'{key} = "{value}"\n' for key, value in options.items())
    text = f'[brand]\nname = "B"\n[sinks.out]\nplugin = "{plugin}"\n{lines}{field} = "${{{variable}}}"\n'
    message = problems(write_config, plugins, text)
    assert f"[sinks.out] {field}: environment variable {variable} is not set (export {variable}=...)" in message
    assert not_also not in message
    assert len([line for line in message.splitlines() if f"[sinks.out] {field}" in line]) == 1


def test_duplicate_route_names_are_refused(write_config, plugins, base_config):
    text = base_config + """
    [[routes]]
    name = "support"
    sinks = ["sales"]
    """
    message = problems(write_config, plugins, text)
    assert "[routes.support] name: route names must be unique: 'support' is also route #1" in message

