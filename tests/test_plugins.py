"""Plugin discovery: entry points, allow and block lists, clashing names, contract breaches."""
import sys
import types

import click
import pytest

from socialcrm import Source, hookimpl
from socialcrm.core.sdk.errors import PluginError
from socialcrm.core.engine.plugins import PluginManager

PLUGIN_MODULE = '''
from socialcrm import Delivery, Sink, hookimpl

class TicketsSink(Sink):
    """Tickets for a test helpdesk."""
    name = "tickets"

    def send(self, records):
        return [Delivery.delivered(r.id, "T-" + r.id) for r in records]

@hookimpl
def register_sinks(register):
    register(TicketsSink)
'''


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A distribution installed into a folder on sys.path, with an entry point in the socialcrm group."""
    (tmp_path / "acme_tickets.py").write_text(PLUGIN_MODULE)
    dist_info = tmp_path / "acme_tickets-1.2.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-tickets\nVersion: 1.2.0\n")
    (dist_info / "entry_points.txt").write_text("[socialcrm]\ntickets = acme_tickets\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tickets"
    sys.modules.pop("acme_tickets", None)


def test_builtins_come_through_entry_points():
    pm = PluginManager().load_entry_points()
    assert {"sources.jsonl", "sinks.jsonl", "sinks.console"} <= {name for name, _ in pm.pm.list_name_plugin()}
    listing = {(p.kind, p.name): p for p in pm.listing()}
    assert listing[("source", "jsonl")].distribution == "socialcrm"
    assert ("sink", "console") in listing


def test_installed_plugin_is_discovered_with_its_distribution(installed_plugin):
    pm = PluginManager().load_entry_points()
    info = pm.sinks()["tickets"]
    assert (info.plugin, info.distribution, info.version) == ("tickets", "acme-tickets", "1.2.0")
    assert info.cls.__name__ == "TicketsSink"


def test_block_list_and_allow_list(installed_plugin, monkeypatch):
    monkeypatch.setenv("SOCIALCRM_BLOCK_PLUGINS", "tickets")
    assert "tickets" not in PluginManager().load_entry_points().sinks()
    monkeypatch.delenv("SOCIALCRM_BLOCK_PLUGINS")
    monkeypatch.setenv("SOCIALCRM_LOAD_PLUGINS", "tickets,sources.jsonl")
    pm = PluginManager().load_entry_points()
    assert set(pm.sinks()) == {"tickets"} and set(pm.sources()) == {"jsonl"}
    monkeypatch.setenv("SOCIALCRM_LOAD_PLUGINS", "")
    assert not list(PluginManager().load_entry_points().listing())


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def test_two_plugins_registering_one_name_is_an_error():
    class A(Source):
        name = "feed"

    class B(Source):
        name = "feed"

    pm = PluginManager()
    pm.register(_module("one", register_sources=hookimpl(lambda register: register(A))), name="one")
    pm.register(_module("two", register_sources=hookimpl(lambda register: register(B))), name="two")
    with pytest.raises(PluginError, match="source name 'feed' is registered by both"):
        pm.sources()


def test_registering_something_that_is_not_a_sink_is_an_error():
    pm = PluginManager()
    pm.register(_module("bad", register_sinks=hookimpl(lambda register: register(object))), name="bad")
    with pytest.raises(PluginError, match="not a Sink subclass"):
        pm.sinks()


def test_a_misspelt_hook_fails_at_registration():
    pm = PluginManager()
    with pytest.raises(PluginError, match="unknown hook"):
        pm.register(_module("typo", register_sink=hookimpl(lambda register: None)), name="typo")


def test_learn_records_hook_sees_records_before_routing(config, plugins, tmp_path, mention_json, write_mentions):
    from socialcrm.core.engine.pipeline import Pipeline

    calls = []

    @hookimpl
    def learn_records(records, mentions):
        calls.append(len(records))
        for record, mention in zip(records, mentions):
            assert record.id == mention.canonical_id
            record.type = "lead"
            record.reasons.append("test plugin: everything is a lead")

    plugins.register(_module("everything_is_a_lead", learn_records=learn_records), name="lead_plugin")
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("1", "my router is broken"),
                                                 mention_json("2", "hello")])
    pipeline = Pipeline(config, plugins)
    pipeline.run_once()
    records = {r.id: r for r in pipeline.store.iter_records()}
    assert calls == [2]
    assert {r.type for r in records.values()} == {"lead"}
    assert all(r.route == ["sales"] for r in records.values())  # routing saw the plugin's change
    assert "test plugin: everything is a lead" in records["x:1"].reasons
    pipeline.close()


COMMAND_PLUGIN = '''
import click

from socialcrm import config_option, hookimpl


@hookimpl
def register_commands(cli):
    @cli.command("count-sources")
    @config_option
    @click.pass_obj
    def count_sources(ctx, config_path):
        """How many sources the config sets up."""
        click.echo(f"{len(ctx.config(config_path).sources)} sources")
'''


def _command_plugin(name: str = "acme_commands") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(COMMAND_PLUGIN, f"{name}.py", "exec"), module.__dict__)  # noqa: S102 - the plugin under test
    return module


def test_a_plugin_adds_a_command_that_reads_the_config(plugins, config):
    from click.testing import CliRunner

    from socialcrm.core.cli.context import Context
    from socialcrm.core.cli.main import main

    plugins.register(_command_plugin(), name="acme_commands")
    runner = CliRunner()
    listed = runner.invoke(main, ["--help"], obj=Context(plugins))
    assert listed.exit_code == 0 and "count-sources" in listed.output and "How many sources" in listed.output
    result = runner.invoke(main, ["count-sources", "--config", str(config.path)], obj=Context(plugins))
    assert result.exit_code == 0, result.output
    assert result.output == f"{len(config.sources)} sources\n"
    # Registered on the plugin manager, not on the group: a CLI without the plugin has no such command.
    assert "count-sources" not in runner.invoke(main, ["--help"]).output


def test_built_in_commands_come_through_the_hook():
    pm = PluginManager().load_entry_points()
    names = {name for name, _ in pm.pm.list_name_plugin()}
    assert {"commands.dlq", "commands.status", "commands.serve"} <= names
    cli = click.Group("socialcrm")
    pm.register_commands(cli)
    assert {"dlq", "status", "serve", "erase", "sources", "sinks", "plugin", "classify", "train"} <= set(cli.commands)


def test_two_plugins_adding_one_command_name_is_an_error(plugins):
    from click.testing import CliRunner

    from socialcrm.core.cli.context import Context
    from socialcrm.core.cli.main import main

    plugins.register(_command_plugin("one"), name="one")
    plugins.register(_command_plugin("two"), name="two")
    result = CliRunner().invoke(main, ["count-sources"], obj=Context(plugins))
    assert result.exit_code == 2
    assert "command 'count-sources' is registered by both 'one' and 'two'" in result.output


def test_a_plugin_command_may_not_replace_a_built_in_one(plugins):
    from click.testing import CliRunner

    from socialcrm.core.cli.context import Context
    from socialcrm.core.cli.main import main

    @hookimpl
    def register_commands(cli):
        @cli.command("status")
        def status():
            """Not the real status."""

    plugins.register(_module("impostor", register_commands=register_commands), name="impostor")
    result = CliRunner().invoke(main, ["status"], obj=Context(plugins))
    assert result.exit_code == 2
    assert "command 'status' is registered by both 'commands.status' and 'impostor'" in result.output
