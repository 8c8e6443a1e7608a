"""``socialcrm sinks test NAME``: check one configured sink's credentials and permissions.

It builds the sink from its ``[sinks.NAME]`` block and calls its ``check()``, which makes one harmless
call (an SMTP login, Slack's ``auth.test``, Jira's ``myself``, a one-object HubSpot read) and says what
it found; a failure is explained in plain words and the command exits non-zero.
"""
from __future__ import annotations

import click

from socialcrm.core.cli.context import Context
from socialcrm.core.engine.config import Config, SinkConfig
from socialcrm.core.sdk.errors import AuthError, FatalError, RetriableError
from socialcrm.core.sdk.redact import RedactSecrets
from socialcrm.core.cli.commands._common import add_test_group, build, checked, explain, fail
from socialcrm.core.sdk.hookspecs import hookimpl

# What each failure means, in the words a person acting on it needs.
_MEANING = (
    (AuthError, "the credentials were refused, lack a permission, or the settings point at the wrong place"),
    (RetriableError, "the service could not be reached, or is failing right now; try again later"),
    (FatalError, "the service refused the request"),
    (OSError, "a local file or folder cannot be used"),
)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add the ``sinks`` group (``sinks test``) to the ``socialcrm`` group."""
    add_test_group(cli, "sinks", _test)


def _test(ctx: Context, config: Config, sink_config: SinkConfig) -> None:
    label = f"sink {sink_config.instance} ({sink_config.plugin})"
    redactor = RedactSecrets(config.secrets)

    def failure(exc: Exception) -> str:
        return redactor.redact(f"{label} FAILED: {explain(exc, _MEANING)}")

    try:
        sink = build(ctx, config, "sinks", sink_config)
    except Exception as exc:  # a sink that cannot even be built is reported like a failed check
        fail(failure(exc))
    result = checked(sink, failure)
    disabled = "" if sink_config.enabled else " (disabled in the config: `run` does not deliver to it)"
    click.echo(f"{label}: ok{disabled}")
    click.echo(redactor.redact(result))
