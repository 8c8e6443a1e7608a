"""Base classes for the two kinds of connector plugin: sources (listen) and sinks (engage)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Sequence

from marshmallow import Schema

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.model import Delivery, Page, Record
from socialcrm.core.sdk.schema import StrictSchema

if TYPE_CHECKING:  # pragma: no cover
    import requests

    from socialcrm.core.sdk.http import HttpClient, ResponseAction


class EmptySchema(StrictSchema):
    """The config schema of a plugin that takes no options: any key is a typo and an error."""


@dataclass
class PluginContext:
    """What the host hands a plugin instance besides its own config block.

    ``instance`` is the block name in the config (``[sinks.care_desk]`` -> ``care_desk``); ``brand``
    the brand being listened for; ``base_dir`` the folder relative paths in the config are read from.
    ``final_pass`` is True while the host reads everything there is and then stops (``run --once``):
    no later poll will come, so a source reads what it would otherwise wait on (a file's unfinished
    last line) rather than leave it behind.
    """

    instance: str
    brand: Brand
    base_dir: str = "."
    secrets: frozenset[str] = field(default_factory=frozenset)
    final_pass: bool = False
    #: The HTTP clients ``http()`` made, so the host can count the calls an instance makes.
    http_clients: list = field(default_factory=list, repr=False, compare=False)
    #: The plugin instance this context was given to (``Connector.__init__`` sets it); ``http()`` asks its
    #: ``interpret_response`` about every response.
    connector: "Connector | None" = field(default=None, repr=False, compare=False)

    @property
    def log(self) -> logging.Logger:
        """A logger named for this plugin instance."""
        return logging.getLogger(f"socialcrm.plugin.{self.instance}")

    def http(self, **options: Any) -> "HttpClient":
        """The shared HTTP layer for this instance (timeouts, retries, rate limits, redaction); see
        ``socialcrm.core.sdk.http.HttpClient`` for the options. The plugin's ``interpret_response``
        classifies the responses, unless ``interpret`` is given."""
        from socialcrm.core.sdk.http import HttpClient
        options.setdefault("secrets", self.secrets)
        if self.connector is not None:
            options.setdefault("interpret", self.connector.interpret_response)
        client = HttpClient(self.instance, **options)
        self.http_clients.append(client)
        return client

    @property
    def http_calls(self) -> int:
        """HTTP requests sent so far through the clients ``http()`` made (retries included)."""
        return sum(client.calls for client in self.http_clients)


class Connector:
    """What sources and sinks share: a name, a config schema, and the lifecycle."""

    #: The name users write as ``plugin = "..."``; by convention also the module's file stem.
    name: ClassVar[str] = ""
    #: A marshmallow schema for the plugin's config block; unknown keys must be rejected.
    ConfigSchema: ClassVar[type[Schema]] = EmptySchema
    #: Config fields that hold secrets: their values never reach a log line or an error message.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict[str, Any], context: PluginContext):
        self.config = config
        self.context = context
        self.log = context.log
        context.connector = self

    def interpret_response(self, response: "requests.Response") -> "ResponseAction | None":
        """Say what a response from this plugin's vendor means, before the HTTP client's own table.

        Return a ``ResponseAction`` (``OK``, ``RETRY``, ``RATE_LIMITED``, ``AUTH``, ``FATAL``, optionally
        ``.because(reason, retry_after)``), or ``None`` to let the status decide (401/403 auth, 408/5xx
        retry, 429 rate limited, other 4xx fatal). Override it when a vendor answers 200 with an error
        body or uses a status unlike its meaning; the errors raised carry ``status`` and ``response``.
        """
        return None

    def check(self) -> str:
        """Make one harmless call to prove the credentials and permissions work; return what was found.

        Raise ``AuthError`` or ``RetriableError`` with a message a person can act on when it fails.
        """
        return "nothing to check"

    def close(self) -> None:
        """Release files, sessions and connections. Called once when the run ends."""


class Source(Connector):
    """A source listens to one network (or file, or feed) and yields pages of mentions.

    Subclass it, set ``name`` and ``ConfigSchema``, and implement ``fetch``. Set ``threads = True``
    when the network tells replies apart: the source then fills each reply's ``reply_to`` (its parent)
    and ``conversation`` (its thread's root), and the contract kit checks that it does.
    """

    threads: bool = False

    def fetch(self, cursor: Any) -> Iterator[Page]:
        """Yield pages of mentions newer than ``cursor``, each with the cursor to resume after it.

        ``cursor`` is what the last stored page returned (``None`` on the first run) and must be
        JSON-serialisable. The host stores a page's mentions and its cursor in one transaction, so a
        page yielded is never skipped and at most one page is re-read after a crash. Raise
        ``AuthError`` for bad credentials and ``RetriableError`` for transient trouble.
        """
        raise NotImplementedError

    def backfill(self, since: datetime, cursor: Any = None) -> Iterator[Page]:
        """Optionally yield pages of history back to ``since``. Sources that cannot, don't override.

        ``cursor`` is what the last stored backfill page returned (``None`` for a new backfill), so
        an interrupted backfill resumes; ``socialcrm backfill`` keeps it apart from the live cursor.
        """
        raise NotImplementedError(f"source {self.name!r} cannot backfill")


class Sink(Connector):
    """A sink delivers records to a system of record and answers one ``Delivery`` per record.

    Subclass it, set ``name``, ``ConfigSchema`` and ``max_batch``, and implement ``send``.
    """

    #: The most records ``send`` is given at once.
    max_batch: ClassVar[int] = 100

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        """Deliver ``records`` and return exactly one ``Delivery`` per record, in any order.

        Use the record id as the idempotency key (an upsert by external id, an ``Idempotency-Key``
        header), so a re-send after a crash updates the same object instead of making a second one.
        A record the system refuses for good is ``Delivery.rejected`` (it goes to the dead-letter
        queue); a transient failure is ``Delivery.retry``. Raising ``RetriableError`` means every
        record of the batch is retried.

        A record whose ``thread_object`` is set is a follow-up: add it to that object (the one its
        conversation's first record made in this sink) rather than opening another; see "Follow-ups" in
        docs/writing-plugins.md.
        """
        raise NotImplementedError

    def send_each(self, records: Sequence[Record]) -> Iterator[Delivery]:
        """Optional, for a sink that makes one request per record: yield each record's ``Delivery`` as
        soon as its request is answered.

        The host saves each outcome before it takes the next one from the generator, so a process killed
        mid-batch re-sends at most the one record whose answer was lost, not the whole batch. A sink that
        does not define it is sent through ``send``. Stop early (or raise ``RetriableError``) when the
        system is down: the records not yet sent go back unsent and cost no attempt.
        """
        raise NotImplementedError
