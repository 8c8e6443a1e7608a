"""The contract every source and sink honours, as pytest base classes a plugin's tests subclass.

    class TestForumSource(SourceContract):
        plugin = ForumSource
        config = {"base_url": "https://forum.example.com", "page_size": 3}

        def serve(self, upstream, api):
            ...  # answer the vendor's endpoint from `upstream` with a `responses` callback

Every ``test_*`` method below then runs against the plugin. A contract test fails with a message
that says what the host expects and, where it can tell, what to change.
"""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any, ClassVar, Sequence

import pytest
from marshmallow import Schema, ValidationError

from socialcrm.core.sdk.connector import Connector, Sink, Source
from socialcrm.core.sdk.errors import AuthError, RetriableError
from socialcrm.core.sdk.model import (Author, Delivery, DeliveryStatus, Engagement, Mention, Page, Record,
                          describe_validation_error, flatten_messages, mention_from_json)
from socialcrm.testing.builders import load_config, make_context, make_record, secret_values
from socialcrm.testing.fakes import FakeClock, FakeSystem, Fault, Upstream, UpstreamItem

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_NETWORK = re.compile(r"^[a-z0-9_-]+$")
_TYPO = "surely_a_typo"

# Failures a source or sink must treat as "try again later", never as the data's fault.
TRANSIENT_FAULTS = [Fault.server_error(500), Fault.server_error(503), Fault.timeout(), Fault.connection_error()]
TRANSIENT_IDS = ["500", "503", "timeout", "connection-error"]
AUTH_FAULTS = [Fault.unauthorized(401), Fault.unauthorized(403)]
AUTH_IDS = ["401", "403"]


def _responses():
    # Imported when a contract runs, not when pytest loads the kit: socialcrm installs without its
    # test extras, and loading the plugin must never break an unrelated test run.
    try:
        import responses
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.fail("socialcrm's plugin kit needs `responses`: pip install 'socialcrm[test]'", pytrace=False)
    return responses


def _error_fields(error: ValidationError) -> set[str]:
    """The top-level field names a validation error names."""
    return {path.split(".")[0] for path, _ in flatten_messages(error.messages)}


def mention_problems(mention: Any) -> list[str]:
    """What is wrong with ``mention`` as a socialcrm ``Mention`` (empty when it is sound).

    Checks the types the store and learning rely on, then loads the mention's JSON form through
    ``socialcrm.core.sdk.model.mention_from_json`` (the ``MentionSchema``) and compares it.
    """
    if not isinstance(mention, Mention):
        return [f"{mention!r} is not a socialcrm.Mention"]
    m, problems = mention, []
    if not (isinstance(m.network, str) and _NETWORK.match(m.network)):
        problems.append(f"network {m.network!r} must be lower-case letters, digits, '_' or '-'")
    if not (isinstance(m.native_id, str) and m.native_id):
        problems.append(f"native_id {m.native_id!r} must be a non-empty string (the network's own id)")
    if not isinstance(m.text, str):
        problems.append(f"text must be a string, not {type(m.text).__name__}")
    if not (isinstance(m.created_at, datetime) and m.created_at.tzinfo is not None
            and m.created_at.utcoffset() == timedelta(0)):
        problems.append(f"created_at {m.created_at!r} must be an aware UTC datetime "
                        "(parse with the zone, then .astimezone(timezone.utc))")
    if not isinstance(m.author, Author):
        problems.append("author must be a socialcrm.Author")
    else:
        for name in ("id", "handle", "name", "profile_url"):
            value = getattr(m.author, name)
            if value is not None and not isinstance(value, str):
                problems.append(f"author.{name} must be a string or None, not {type(value).__name__}")
        if type(m.author.followers) is not int or m.author.followers < 0:
            problems.append(f"author.followers {m.author.followers!r} must be a whole number >= 0")
        if not isinstance(m.author.verified, bool):
            problems.append("author.verified must be True or False")
    if not isinstance(m.engagement, Engagement):
        problems.append("engagement must be a socialcrm.Engagement")
    else:
        for name in ("likes", "reposts", "replies", "quotes"):
            value = getattr(m.engagement, name)
            if type(value) is not int or value < 0:
                problems.append(f"engagement.{name} {value!r} must be a whole number >= 0")
    for name in ("url", "lang"):
        value = getattr(m, name)
        if value is not None and not isinstance(value, str):
            problems.append(f"{name} must be a string or None")
    for name in ("reply_to", "quote_of", "repost_of"):
        value = getattr(m, name)
        if value is not None and not (isinstance(value, str) and ":" in value):
            problems.append(f"{name} {value!r} must be a full mention id, 'network:native_id'")
    if m.addressed_to_brand is not None and not isinstance(m.addressed_to_brand, bool):
        problems.append("addressed_to_brand must be True, False or None")
    if m.raw is not None:
        try:
            json.dumps(m.raw)
        except (TypeError, ValueError) as exc:
            problems.append(f"raw must be the network's payload as JSON-ready data ({exc})")
    if problems:
        return problems
    as_json = {"network": m.network, "id": m.native_id, "text": m.text, "created_at": m.created_at.isoformat(),
               "url": m.url, "lang": m.lang, "reply_to": m.reply_to, "quote_of": m.quote_of,
               "repost_of": m.repost_of, "addressed_to_brand": m.addressed_to_brand,
               "author": {"id": m.author.id, "handle": m.author.handle, "name": m.author.name,
                          "followers": m.author.followers, "verified": m.author.verified,
                          "profile_url": m.author.profile_url},
               "engagement": {"likes": m.engagement.likes, "reposts": m.engagement.reposts,
                              "replies": m.engagement.replies, "quotes": m.engagement.quotes}}
    try:
        back = mention_from_json(as_json)
    except ValidationError as exc:
        return [f"the model refuses it: {describe_validation_error(exc)}"]
    if (back.id, back.created_at, back.text) != (m.id, m.created_at, m.text):
        problems.append("it does not survive a round trip through MentionSchema")
    return problems


class _ConnectorContract:
    """What sources and sinks share: the plugin's declaration, its config schema, the test's fakes."""

    #: The Source or Sink subclass under test.
    plugin: ClassVar[type[Connector]]
    #: A valid config block for it, as the TOML file gives it (before the plugin's schema loads it).
    config: ClassVar[dict[str, Any]] = {}
    #: Bad blocks and the field each must be refused for: ``[({"page_size": 0}, "page_size")]``.
    #: Each is merged over ``config``; a value of ``None`` removes the key.
    invalid_configs: ClassVar[Sequence[tuple[dict[str, Any], str]]] = ()

    tmp_path: Any
    clock: FakeClock
    api: Any

    def _start_kit(self, tmp_path) -> None:
        if not isinstance(getattr(self, "plugin", None), type):
            pytest.fail(f"{type(self).__name__}: set `plugin = YourPluginClass` on the test class", pytrace=False)
        self.tmp_path = tmp_path
        self.clock = FakeClock()
        # Nothing passes through to the network: a request no test answered fails at once.
        self.api = _responses().RequestsMock(assert_all_requests_are_fired=False)
        self.api.start()

    def _stop_kit(self) -> None:
        self.api.stop()
        self.api.reset()

    def make_plugin(self, instance: str | None = None) -> Connector:
        """A fresh instance of the plugin, built as the host builds it (a restart makes a new one)."""
        return self.plugin(load_config(self.plugin, self.config),
                           make_context(self.plugin, self.config, self.tmp_path, self.clock, instance))

    def _is_http(self) -> bool:
        return bool(self.api.registered())

    def _require_http(self) -> None:
        if not self._is_http():
            pytest.skip("serve() registered no HTTP endpoint, so the HTTP error checks do not apply")

    def _secrets(self) -> frozenset[str]:
        return secret_values(self.plugin, self.config)

    # --- the declaration ---

    def test_plugin_declares_name_summary_and_schema(self):
        cls = self.plugin
        assert isinstance(cls.name, str) and _NAME.match(cls.name), (
            f"{cls.__name__}.name = {cls.name!r}: give the name users write as plugin = \"...\" "
            "(lower case, starting with a letter; the same as the module and the entry point)")
        assert (cls.__doc__ or "").strip(), (
            f"{cls.__name__} has no docstring: its first line is what `socialcrm plugins` shows")
        assert isinstance(cls.ConfigSchema, type) and issubclass(cls.ConfigSchema, Schema), (
            f"{cls.__name__}.ConfigSchema must be a marshmallow Schema class")
        fields = {f.data_key or name for name, f in cls.ConfigSchema().fields.items()}
        unknown = [name for name in cls.secret_fields if name not in fields]
        assert not unknown, (f"{cls.__name__}.secret_fields names {unknown}, which are not fields of its "
                             f"ConfigSchema ({sorted(fields)}): the host could not redact them")

    # --- the config schema ---

    def test_config_fields_are_not_the_hosts_own_keys(self):
        from socialcrm.core.engine.config import SinkHostSchema, SourceHostSchema
        host = SourceHostSchema if issubclass(self.plugin, Source) else SinkHostSchema
        fields = {f.data_key or name for name, f in self.plugin.ConfigSchema().fields.items()}
        taken = sorted(fields & set(host().fields))
        assert not taken, (f"{self.plugin.__name__}.ConfigSchema has {taken}, which socialcrm reads itself from every "
                           f"block (see {host.__name__} in core/engine/config.py); the plugin would never see them: rename")

    def test_config_loads(self):
        problem = None
        try:
            load_config(self.plugin, self.config)
        except ValidationError as exc:
            problem = describe_validation_error(exc)
        if problem:
            pytest.fail(f"the test's own `config` is refused: {problem}", pytrace=False)

    def test_config_rejects_unknown_keys_by_name(self):
        try:
            load_config(self.plugin, {**self.config, _TYPO: 1})
        except ValidationError as exc:
            assert _TYPO in _error_fields(exc), f"the error does not name the unknown key {_TYPO!r}: {exc.messages}"
            return
        pytest.fail(f"{self.plugin.__name__}.ConfigSchema accepted the unknown key {_TYPO!r}: a typo in a "
                    "config file must be an error; subclass socialcrm.StrictSchema (or set `class Meta: "
                    "unknown = RAISE`)", pytrace=False)

    def test_config_names_each_missing_required_field(self):
        schema = self.plugin.ConfigSchema()
        required = [f.data_key or name for name, f in schema.fields.items() if f.required and not f.dump_only]
        for name in required:
            block = {k: v for k, v in self.config.items() if k != name}
            try:
                load_config(self.plugin, block)
            except ValidationError as exc:
                assert name in _error_fields(exc), (
                    f"without the required field {name!r} the error names {sorted(_error_fields(exc))}, not it")
            else:
                pytest.fail(f"the config loaded without the required field {name!r}", pytrace=False)

    def test_config_refuses_invalid_values_by_name(self):
        if not self.invalid_configs:
            pytest.skip("set invalid_configs = [({'field': bad value}, 'field')] to check your validators")
        for changes, field_name in self.invalid_configs:
            block = {**self.config, **changes}
            block = {k: v for k, v in block.items() if v is not None}
            try:
                load_config(self.plugin, block)
            except ValidationError as exc:
                assert field_name in _error_fields(exc), (
                    f"{changes} was refused, but the error names {sorted(_error_fields(exc))}, not {field_name!r}")
            else:
                pytest.fail(f"the config loaded with {changes}; it should be refused naming {field_name!r}",
                            pytrace=False)


class SourceContract(_ConnectorContract):
    """Subclass as ``TestMySource``, set ``plugin`` and ``config``, and implement ``serve``.

    The kit publishes posts on a fake network (``Upstream``), calls ``serve(upstream, api)`` before
    each run of ``fetch`` and checks that the source reads every post exactly once across pages and
    runs, that resuming from any page's cursor neither repeats nor skips a post, that every mention
    is a valid ``Mention`` saying what the post said, that a source declaring ``threads = True``
    names each reply's parent (``reply_to``) and thread root (``conversation``), and, for HTTP sources,
    that rate limits are waited out and failures raise ``RetriableError`` or ``AuthError``.
    """

    #: Posts on the network before the first run, and added before the second.
    initial_posts: ClassVar[int] = 7
    new_posts: ClassVar[int] = 5
    #: Posts per page when the vendor decides the page size (see ``Upstream.page_size``).
    page_size: ClassVar[int] = 3

    upstream: Upstream

    @pytest.fixture(autouse=True)
    def _socialcrm_source_kit(self, tmp_path):
        self._start_kit(tmp_path)
        self.upstream = Upstream(page_size=self.page_size)
        yield
        self._stop_kit()

    # --- what the author provides ---

    def serve(self, upstream: Upstream, api: Any) -> None:
        """Make ``upstream`` readable by the source, the way the real network serves it.

        For an HTTP source, register ``responses`` callbacks on ``api`` that answer the vendor's
        endpoint from ``upstream`` (``upstream.after(since_id, limit)``, ``upstream.before(...)``,
        ``upstream.newest(...)``) in the vendor's documented JSON; wrap each callback in
        ``upstream.guard(...)`` so the kit's failures reach the source. For a file or feed, write
        the file. Called before every run; the kit resets ``api`` first.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement serve(self, upstream, api)")

    def native_id(self, item: UpstreamItem) -> str:
        """The ``Mention.native_id`` the source should give ``item`` (by default its id as a string)."""
        return item.native_id

    # --- helpers ---

    def run_fetch(self, cursor: Any) -> list[tuple[Page, Any]]:
        """Serve the upstream, run ``fetch(cursor)`` to the end; each page with its cursor as stored."""
        self.api.reset()
        self.serve(self.upstream, self.api)
        source = self.make_plugin()
        limit = 4 * len(self.upstream.items) + 10
        out: list[tuple[Page, Any]] = []
        try:
            for page in source.fetch(cursor):
                assert isinstance(page, Page), f"fetch yielded {page!r}; yield socialcrm.Page(mentions, cursor)"
                try:
                    stored = json.loads(json.dumps(page.cursor))
                except (TypeError, ValueError) as exc:
                    pytest.fail(f"cursor {page.cursor!r} is not JSON-serialisable ({exc}); the host stores it "
                                "as JSON", pytrace=False)
                out.append((page, stored))
                assert len(out) <= limit, (f"fetch yielded more than {limit} pages for {len(self.upstream.items)} "
                                           "posts: does it stop when the API has nothing more?")
        finally:
            source.close()
        return out

    def _check_exactly(self, pages: list[tuple[Page, Any]], items: list[UpstreamItem], what: str) -> None:
        got = [m.native_id for page, _ in pages for m in page.mentions if isinstance(m, Mention)]
        expected = [self.native_id(i) for i in items]
        repeated = sorted({x for x in got if got.count(x) > 1})
        missing = [x for x in expected if x not in got]
        unexpected = [x for x in got if x not in expected]
        assert not (repeated or missing or unexpected), (
            f"{what}: expected posts {expected}; repeated {repeated}, missing {missing}, "
            f"unexpected {unexpected} (pages: {[[m.native_id for m in p.mentions] for p, _ in pages]})")

    def _first_run(self) -> list[tuple[Page, Any]]:
        self.upstream.publish(self.initial_posts)
        pages = self.run_fetch(None)
        with_mentions = [p for p, _ in pages if p.mentions]
        assert len(with_mentions) >= 2, (
            f"{self.initial_posts} posts came in {len(with_mentions)} page(s); the kit needs several pages to "
            f"check the cursor: serve upstream.page_size ({self.page_size}) posts per page, or set a small "
            "page size in `config`")
        return pages

    # --- cursors ---

    def test_first_run_reads_every_post_once(self):
        pages = self._first_run()
        self._check_exactly(pages, self.upstream.items, "the first run")
        errors = [e for page, _ in pages for e in page.errors]
        assert not errors, f"the source reported well-formed posts as unreadable: {errors}"

    def test_each_page_cursor_resumes_right_after_that_page(self):
        pages = self._first_run()
        seen: set[str] = set()
        for number, (page, cursor) in enumerate(pages, start=1):
            seen.update(m.native_id for m in page.mentions)
            rest = [i for i in self.upstream.items if self.native_id(i) not in seen]
            self._check_exactly(self.run_fetch(cursor), rest,
                                f"resuming from page {number}'s cursor {cursor!r} (as after a crash)")

    def test_next_run_reads_only_new_posts(self):
        pages = self._first_run()
        cursor = pages[-1][1]
        added = self.upstream.publish(self.new_posts)
        second = self.run_fetch(cursor)
        self._check_exactly(second, added, f"the next run from cursor {cursor!r}")
        cursor = second[-1][1] if second else cursor
        self._check_exactly(self.run_fetch(cursor), [], f"a run with nothing new, from cursor {cursor!r}")

    def test_nothing_upstream_yields_no_mentions(self):
        self._check_exactly(self.run_fetch(None), [], "a first run on an empty network")

    # --- mentions ---

    def test_mentions_validate_against_the_model(self):
        for page, _ in self._first_run():
            for mention in page.mentions:
                problems = mention_problems(mention)
                assert not problems, f"mention {getattr(mention, 'id', mention)!r}: " + "; ".join(problems)

    def test_mentions_say_what_the_post_said(self):
        pages = self._first_run()
        by_id = {self.native_id(i): i for i in self.upstream.items}
        for page, _ in pages:
            for m in page.mentions:
                item = by_id[m.native_id]
                assert item.text in m.text, f"mention {m.id}: text {m.text!r} does not contain the post's {item.text!r}"
                assert m.created_at == item.created_at, (
                    f"mention {m.id}: created_at {m.created_at!r}, but the post was made at {item.created_at!r}")
                if m.author.handle is not None:
                    assert m.author.handle.lstrip("@") == item.author_handle, (
                        f"mention {m.id}: author.handle {m.author.handle!r}, the post's author is "
                        f"{item.author_handle!r}")

    # --- conversations (sources that declare threads) ---

    def test_replies_name_their_parent_and_conversation(self):
        """A source that declares ``threads = True`` fills ``reply_to`` and ``conversation`` of every
        reply; one that does not may leave both unset, but a conversation it names is consistent."""
        if not getattr(self.plugin, "threads", False):
            for page, _ in self._first_run():
                for m in page.mentions:
                    assert m.conversation is None or m.reply_to or m.conversation == m.id, (
                        f"mention {m.id} names conversation {m.conversation!r} but no reply_to: a post in someone "
                        "else's thread answers a post of it; set reply_to (and `threads = True` on the source)")
            return
        thread = self.upstream.publish(3, thread=True)
        by_id = {self.native_id(i): i for i in self.upstream.items}
        ids = {i.id: self.native_id(i) for i in self.upstream.items}
        replies = 0
        for page, _ in self.run_fetch(None):
            for m in page.mentions:
                item = by_id.get(m.native_id)
                if item is None or item.reply_to is None:
                    continue
                replies += 1
                parent, root = f"{m.network}:{ids[item.reply_to]}", f"{m.network}:{ids[item.root]}"
                assert m.reply_to == parent, (
                    f"mention {m.id} answers {parent}, but its reply_to is {m.reply_to!r}: a source that declares "
                    "threads sets reply_to to the parent's full id (network:native_id)")
                assert m.conversation == root, (
                    f"mention {m.id} belongs to the thread that {root} started, but its conversation is "
                    f"{m.conversation!r}: set conversation to the root post's full id (network:native_id)")
        assert replies == len(thread) - 1, (
            f"the source read {replies} of the {len(thread) - 1} replies the kit published: serve `reply_to` and "
            "`root` of each UpstreamItem in the vendor's thread fields")

    # --- failures (HTTP sources) ---

    def _serve_with_posts(self) -> None:
        self.upstream.publish(self.initial_posts)
        self.api.reset()
        self.serve(self.upstream, self.api)
        self._require_http()

    def _assert_fault_reached(self) -> None:
        assert self.upstream.faults_served, ("the kit scripted a failure but no request got it: wrap each "
                                             "callback in serve() with upstream.guard(callback)")

    def test_rate_limit_wait_is_honoured(self):
        self._serve_with_posts()
        self.upstream.fail_next(Fault.rate_limited(retry_after=7))
        pages = self.run_fetch(None)
        self._assert_fault_reached()
        self._check_exactly(pages, self.upstream.items, "a run that met one 429 with Retry-After: 7")
        assert 7.0 in self.clock.waits, (
            f"after a 429 with Retry-After: 7 the source waited {self.clock.waits}; make requests through "
            "self.context.http(...), which waits exactly as long as the server asks")

    @pytest.mark.parametrize("fault", TRANSIENT_FAULTS, ids=TRANSIENT_IDS)
    def test_server_trouble_raises_retriable_error(self, fault):
        self._serve_with_posts()
        self.upstream.fail_always(fault)
        with pytest.raises(RetriableError):
            self.run_fetch(None)
        self._assert_fault_reached()

    @pytest.mark.parametrize("fault", AUTH_FAULTS, ids=AUTH_IDS)
    def test_bad_credentials_raise_auth_error(self, fault):
        self._serve_with_posts()
        self.upstream.fail_always(fault)
        with pytest.raises(AuthError):
            self.run_fetch(None)
        self._assert_fault_reached()

    def test_secrets_stay_out_of_logs_and_errors(self, caplog):
        secrets = self._secrets()
        if not secrets:
            pytest.skip("the plugin has no secret fields set in `config`")
        self._serve_with_posts()
        caplog.set_level(logging.DEBUG)
        messages = []
        for fault in (Fault.unauthorized(401), Fault.server_error(503)):
            self.upstream.heal()
            self.upstream.fail_always(fault)
            with pytest.raises((AuthError, RetriableError)) as caught:
                self.run_fetch(None)
            messages.append(str(caught.value))
        text = caplog.text + "\n".join(messages)
        leaked = [name for name in self.plugin.secret_fields if str(self.config.get(name)) in text]
        assert not leaked, f"the value of {leaked} appears in a log line or an error message"


class SinkContract(_ConnectorContract):
    """Subclass as ``TestMySink``, set ``plugin`` and ``config``; implement ``serve`` for an HTTP sink.

    The kit checks that ``send`` answers exactly one ``Delivery`` per record, that a re-send (even
    after a lost response, even from a new instance) is the same object in the system of record,
    and, for HTTP sinks, that 429, 5xx and timeouts are retry-later (with the server's wait), a
    validation error rejects only its record, and bad credentials are never the records' fault.
    """

    #: Records per batch in the checks (never more than the sink's ``max_batch``).
    batch_size: ClassVar[int] = 4

    system: FakeSystem

    @pytest.fixture(autouse=True)
    def _socialcrm_sink_kit(self, tmp_path):
        self._start_kit(tmp_path)
        self.system = FakeSystem()
        self.serve(self.system, self.api)
        yield
        self._stop_kit()

    # --- what the author provides ---

    def serve(self, system: FakeSystem, api: Any) -> None:
        """Stand in for the system of record. Leave it out for a sink that writes no HTTP.

        Register ``responses`` callbacks on ``api`` that read the vendor request, answer the
        vendor's validation error when ``system.refuses(record_id)``, otherwise call
        ``system.create(record_id, data, idempotency_key=...)`` (or ``system.upsert``) and answer
        the vendor's success response with the object's id. Wrap each callback in
        ``system.guard(...)`` so the kit's failures reach the sink.
        """

    def stored_record_ids(self) -> list[str] | None:
        """The record id of every object the system of record holds, one entry per object.

        By default what ``serve`` stored in ``system``; a sink that writes files reads them here;
        None when there is nothing to inspect (a console).
        """
        return self.system.record_ids() if self._is_http() else None

    def make_records(self, count: int, start: int = 1) -> list[Record]:
        """Records to deliver; override to give what the vendor requires."""
        return [make_record(n) for n in range(start, start + count)]

    # --- helpers ---

    def deliver(self, sink: Sink, records: Sequence[Record]) -> list[Delivery]:
        """``send`` in batches of ``max_batch``, read as the host reads it: a ``RetriableError`` means
        every record of the batch waits (with the server's ``retry_after``). Checks one outcome each."""
        out: list[Delivery] = []
        size = self.plugin.max_batch
        for start in range(0, len(records), size):
            batch = list(records[start:start + size])
            try:
                answer = sink.send(batch)
            except RetriableError as exc:
                answer = [Delivery.retry(r.id, str(exc), exc.retry_after) for r in batch]
            self._check_one_each(batch, answer)
            out.extend(answer)
        return out

    def _check_one_each(self, records: Sequence[Record], deliveries: Any) -> None:
        assert isinstance(deliveries, list), f"send returned {type(deliveries).__name__}; return a list of Delivery"
        assert all(isinstance(d, Delivery) for d in deliveries), f"send returned {deliveries!r}; use Delivery.*"
        sent = [r.id for r in records]
        answered = [d.record_id for d in deliveries]
        missing = [i for i in sent if i not in answered]
        twice = sorted({i for i in answered if answered.count(i) > 1})
        strangers = [i for i in answered if i not in sent]
        assert not (missing or twice or strangers), (
            f"send must answer exactly one Delivery per record: no answer for {missing}, more than one for "
            f"{twice}, answers for records not sent {strangers}")
        for d in deliveries:
            if d.status is DeliveryStatus.DELIVERED:
                assert isinstance(d.external_id, str) and d.external_id, (
                    f"record {d.record_id} delivered without external_id: give the id the system gave it")
            else:
                assert isinstance(d.error, str) and d.error.strip(), (
                    f"record {d.record_id} is {d.status.value} without a reason: people read it in the "
                    "dead-letter queue")

    def _statuses(self, deliveries: Sequence[Delivery]) -> dict[str, DeliveryStatus]:
        return {d.record_id: d.status for d in deliveries}

    def _check_held_once(self, records: Sequence[Record]) -> None:
        stored = self.stored_record_ids()
        if stored is None:
            return
        for record in records:
            count = stored.count(record.id)
            assert count == 1, (
                f"the system of record holds {count} objects for record {record.id}: "
                + ("does serve() call system.create(...)?" if count == 0 else
                   "a re-send made a second object; use the record id as the idempotency key "
                   "(an Idempotency-Key header, or an upsert by external id)"))

    def _assert_fault_reached(self) -> None:
        assert self.system.faults_served, ("the kit scripted a failure but no request got it: wrap each "
                                           "callback in serve() with system.guard(callback)")

    def _none(self, deliveries: Sequence[Delivery], *statuses: DeliveryStatus, why: str) -> None:
        wrong = {d.record_id: d.status.value for d in deliveries if d.status in statuses}
        assert not wrong, f"{why}, yet send answered {wrong}"

    # --- batching and outcomes ---

    def test_max_batch_is_a_positive_whole_number(self):
        size = self.plugin.max_batch
        assert type(size) is int and size >= 1, f"{self.plugin.__name__}.max_batch = {size!r}: give a whole number >= 1"

    def test_one_outcome_per_record(self):
        records = self.make_records(self.batch_size)
        deliveries = self.deliver(self.make_plugin(), records)
        self._none(deliveries, DeliveryStatus.RETRY, DeliveryStatus.REJECTED,
                   why="a healthy system accepted every record")

    def test_each_record_is_held_once(self):
        records = self.make_records(self.batch_size)
        self.deliver(self.make_plugin(), records)
        self._check_held_once(records)

    def test_resend_is_the_same_record(self):
        records = self.make_records(self.batch_size)
        first = {d.record_id: d.external_id for d in self.deliver(self.make_plugin(), records)}
        # A new instance, as after a crash: the outbox re-sends what it had in flight.
        again = self.make_records(1, start=self.batch_size + 1)
        second = self.deliver(self.make_plugin(), records[:2] + again)
        self._none(second, DeliveryStatus.RETRY, DeliveryStatus.REJECTED, why="a re-send to a healthy system")
        for d in second:
            if d.record_id in first:
                assert d.external_id == first[d.record_id], (
                    f"record {d.record_id} was {first[d.record_id]!r} the first time and {d.external_id!r} "
                    "when re-sent: a re-send must find the same object; use the record id as the idempotency "
                    "key (an Idempotency-Key header, or an upsert by external id)")
        self._check_held_once(records + again)

    # --- failures (HTTP sinks) ---

    def test_lost_response_then_resend_makes_no_second_object(self):
        self._require_http()
        records = self.make_records(min(self.batch_size, 2))
        self.system.fail_always(Fault.lost_response())
        first = self.deliver(self.make_plugin(), records)
        self._assert_fault_reached()
        self._none(first, DeliveryStatus.DELIVERED, DeliveryStatus.REJECTED,
                   why="every response was lost, so nothing is known to be delivered or refused")
        self.system.heal()
        second = self.deliver(self.make_plugin(), records)
        self._none(second, DeliveryStatus.RETRY, DeliveryStatus.REJECTED, why="the re-send met a healthy system")
        self._check_held_once(records)

    def test_short_rate_limit_is_waited_out(self):
        self._require_http()
        records = self.make_records(self.batch_size)
        self.system.fail_next(Fault.rate_limited(retry_after=7))
        deliveries = self.deliver(self.make_plugin(), records)
        self._assert_fault_reached()
        self._none(deliveries, DeliveryStatus.RETRY, DeliveryStatus.REJECTED,
                   why="one 429 with Retry-After: 7 is a short wait")
        assert 7.0 in self.clock.waits, (
            f"after a 429 with Retry-After: 7 the sink waited {self.clock.waits}; send through "
            "self.context.http(...), which waits exactly as long as the server asks")
        self._check_held_once(records)

    def test_long_rate_limit_is_retry_later_with_the_wait(self):
        self._require_http()
        records = self.make_records(self.batch_size)
        self.system.fail_always(Fault.rate_limited(retry_after=3600))
        deliveries = self.deliver(self.make_plugin(), records)
        self._assert_fault_reached()
        self._none(deliveries, DeliveryStatus.DELIVERED, DeliveryStatus.REJECTED,
                   why="a rate limit is not the records' fault")
        short = {d.record_id: d.retry_after for d in deliveries if (d.retry_after or 0) < 3600}
        assert not short, (f"the server asked for 3600 s but these records would come back sooner: {short}; "
                           "pass the RetriableError's retry_after on (Delivery.retry(..., retry_after=...))")

    @pytest.mark.parametrize("fault", TRANSIENT_FAULTS, ids=TRANSIENT_IDS)
    def test_server_trouble_is_retry_later(self, fault):
        self._require_http()
        records = self.make_records(self.batch_size)
        self.system.fail_always(fault)
        deliveries = self.deliver(self.make_plugin(), records)
        self._assert_fault_reached()
        self._none(deliveries, DeliveryStatus.DELIVERED, DeliveryStatus.REJECTED,
                   why=f"every request failed with {fault} (transient)")

    def test_one_server_error_is_retried_in_line(self):
        self._require_http()
        records = self.make_records(self.batch_size)
        self.system.fail_next(Fault.server_error(502))
        deliveries = self.deliver(self.make_plugin(), records)
        self._assert_fault_reached()
        self._none(deliveries, DeliveryStatus.RETRY, DeliveryStatus.REJECTED,
                   why="a single 502 is retried by the shared HTTP layer")
        self._check_held_once(records)

    def test_invalid_record_is_rejected_alone(self):
        self._require_http()
        records = self.make_records(3)
        bad = records[1]
        self.system.refuse(bad.id)
        statuses = self._statuses(self.deliver(self.make_plugin(), records))
        assert self.system.refusals_checked, ("serve() never asked system.refuses(record_id): answer the "
                                              "vendor's validation error when it is true")
        assert statuses[bad.id] is DeliveryStatus.REJECTED, (
            f"the system refused record {bad.id} as invalid (4xx), a permanent failure, but send answered "
            f"{statuses[bad.id].value}; answer Delivery.rejected(record.id, reason)")
        good = {r.id: statuses[r.id].value for r in records if r is not bad and statuses[r.id] is not DeliveryStatus.DELIVERED}
        assert not good, f"one invalid record must not hold back the others: {good}"

    @pytest.mark.parametrize("fault", AUTH_FAULTS, ids=AUTH_IDS)
    def test_bad_credentials_are_not_the_records_fault(self, fault):
        self._require_http()
        records = self.make_records(self.batch_size)
        self.system.fail_always(fault)
        try:
            deliveries = self.deliver(self.make_plugin(), records)
        except AuthError:
            self._assert_fault_reached()
            return  # the host pauses the sink and keeps every record for when the credentials are fixed
        self._assert_fault_reached()
        self._none(deliveries, DeliveryStatus.DELIVERED, DeliveryStatus.REJECTED,
                   why=f"{fault} means the credentials are wrong, not the records (raise AuthError)")

    def test_secrets_stay_out_of_logs_and_errors(self, caplog):
        secrets = self._secrets()
        if not secrets:
            pytest.skip("the plugin has no secret fields set in `config`")
        self._require_http()
        caplog.set_level(logging.DEBUG)
        texts = []
        records = self.make_records(2)
        self.system.refuse(records[0].id)
        for fault in (None, Fault.unauthorized(401), Fault.server_error(503)):
            self.system.heal()
            if fault:
                self.system.fail_always(fault)
            try:
                texts.extend(d.error or "" for d in self.deliver(self.make_plugin(), records))
            except AuthError as exc:
                texts.append(str(exc))
        text = caplog.text + "\n".join(texts)
        leaked = [name for name in self.plugin.secret_fields if str(self.config.get(name)) in text]
        assert not leaked, f"the value of {leaked} appears in a log line or a delivery error"


__all__ = ["SinkContract", "SourceContract", "mention_problems"]
