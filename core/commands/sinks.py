"""``socialcrm sinks test NAME``: check one configured sink's credentials and permissions.

It builds the sink from its ``[sinks.NAME]`` block and calls its ``check()``, which makes one harmless
call (an SMTP login, Slack's ``auth.test``, Jira's ``myself``, a one-object HubSpot read) and says what
it found; a failure is explained in plain words and the command exits non-zero.
"""
from __future__ import annotations

import sys

import click

from ..cli import Context, _config_option
from ..config import Config, SinkConfig
from ..connector import Sink
from ..errors import AuthError, FatalError, RetriableError
from ..redact import RedactSecrets

# What each failure means, in the words a person acting on it needs.
_MEANING = (
    (AuthError, "the credentials were refused, lack a permission, or the settings point at the wrong place"),
    (RetriableError, "the service could not be reached, or is failing right now; try again later"),
    (FatalError, "the service refused the request"),
)


def _sink_config(config: Config, name: str) -> SinkConfig:
    for sink_config in config.sinks:
        if sink_config.instance == name:
            return sink_config
    known = ", ".join(s.instance for s in config.sinks) or "none configured"
    raise click.ClickException(f"{config.path.name} has no [sinks.{name}] block (sinks: {known})")


def _build(ctx: Context, config: Config, sink_config: SinkConfig) -> Sink:
    cls = ctx.plugins.sinks()[sink_config.plugin].cls
    return cls(sink_config.options, config.context(sink_config.instance))


def _explain(exc: Exception) -> str:
    for kind, meaning in _MEANING:
        if isinstance(exc, kind):
            return f"{meaning}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def register(main: click.Group) -> None:
    """Add the ``sinks`` group (``sinks test``) to the ``socialcrm`` group."""

    @main.group("sinks")
    def sinks_group() -> None:
        """Check the configured sinks."""

    @sinks_group.command("test")
    @_config_option
    @click.argument("name")
    @click.pass_obj
    def test_sink(ctx: Context, config_path: str, name: str) -> None:
        """Make one harmless call with sink NAME's settings and say what works or what is wrong."""
        config = ctx.config(config_path)
        sink_config = _sink_config(config, name)
        redactor = RedactSecrets(config.secrets)
        try:
            sink = _build(ctx, config, sink_config)
        except Exception as exc:  # a sink that cannot even be built is reported like a failed check
            click.echo(redactor.redact(f"sink {name} ({sink_config.plugin}) FAILED: {_explain(exc)}"), err=True)
            sys.exit(1)
        try:
            result = sink.check()
        except Exception as exc:  # every failure is reported in words, with a non-zero exit
            click.echo(redactor.redact(f"sink {name} ({sink_config.plugin}) FAILED: {_explain(exc)}"), err=True)
            sys.exit(1)
        finally:
            sink.close()
        disabled = "" if sink_config.enabled else " (disabled in the config: `run` does not deliver to it)"
        click.echo(f"sink {name} ({sink_config.plugin}): ok{disabled}")
        click.echo(redactor.redact(result))
