"""``socialcrm serve``: the REST API under waitress, with the listen/deliver schedule in the same process.

The embedded default needs one process: the API answers on its threads while a background thread
runs ``Pipeline.run_forever`` (poll each source on its interval, deliver between polls). SIGTERM or
SIGINT stops both cleanly: the server stops taking requests and finishes those in hand, the schedule
finishes its page, then the plugins and the store are closed.

A plugin (the ``commands.serve`` entry point): the API adds its own command through the
``register_commands`` hook, so the command line never imports the API, nor the API the command line.
"""
from __future__ import annotations

import errno
import logging
import signal
import threading

import click

from socialcrm.core.sdk.commandline import config_option
from socialcrm.core.sdk.hookspecs import hookimpl

log = logging.getLogger(__name__)


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``serve`` to the ``socialcrm`` group."""

    @cli.command()
    @config_option
    @click.option("--host", help="Address to listen on (default: [api] host, else 127.0.0.1).")
    @click.option("--port", type=click.IntRange(0, 65535),
                  help="Port (default: [api] port, else 8080; 0 picks a free one).")
    @click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Request threads.")
    @click.option("--no-schedule", is_flag=True,
                  help="Serve the API only; listening and delivery run elsewhere (`socialcrm run`, workers).")
    @click.pass_obj
    def serve(ctx, config_path: str, host: str | None, port: int | None, threads: int,
              no_schedule: bool) -> None:
        """Serve the REST API (docs at /docs, spec at /openapi.json) and run the listen/deliver schedule."""
        import waitress

        from socialcrm.api import create_app

        from socialcrm.core.services.runtime import require_lasting_store

        config = ctx.config(config_path)
        require_lasting_store(config, "serve")
        if not config.api.tokens:
            log.warning("no API tokens configured ([api] tokens or $SOCIALCRM_API_TOKENS): every endpoint "
                        "but /health, /docs and the webhooks will answer 401")
        # create_app builds the pipeline from the config; the schedule and the shutdown run that one.
        app = create_app(config, ctx.plugins, scheduled=not no_schedule)
        pipeline = app.extensions["socialcrm"].pipeline
        schedule = None
        try:
            address, number = host or config.api.host, config.api.port if port is None else port
            try:
                server = waitress.create_server(app, host=address, port=number, threads=threads, ident="socialcrm")
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise click.ClickException(f"cannot listen on {address}:{number}: {exc.strerror}: pick another "
                                               "address with --host or [api] host") from None
                raise click.ClickException(f"port {number} on {address} is in use (another socialcrm serve?): "
                                           "pick another with --port or [api] port") from None

            def stop(signum, _frame):
                log.info("signal %s: stopping", signal.Signals(signum).name)
                pipeline.stop_event.set()
                raise SystemExit(0)  # waitress's loop takes this as the order to shut down

            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, stop)
            if not no_schedule:
                schedule = threading.Thread(target=pipeline.run_forever, name="socialcrm-schedule", daemon=True)
                schedule.start()
            click.echo(f"socialcrm API on http://{server.effective_host}:{server.effective_port} "
                       f"(docs /docs); schedule {'off' if no_schedule else 'on'}; stop with Ctrl-C or SIGTERM",
                       err=True)
            server.run()
            server.close()
        finally:
            pipeline.stop_event.set()
            if schedule is not None:
                schedule.join(timeout=60)
                if schedule.is_alive():
                    log.error("the schedule did not stop within 60 s; closing anyway")
            pipeline.close()
        click.echo("socialcrm API stopped", err=True)
