"""socialcrm: wire social media into the systems a company already runs.

The public face for plugin authors, the plugin SDK: everything a source or sink plugin needs, without
reaching into ``socialcrm.core``. Built-in plugins import only this, exactly as third-party ones do.

    from socialcrm import hookimpl, Source, Sink, Mention, Record, Delivery

Sources also find here what reading a network takes: the config schema and secret policy
(``SourceSchema``, ``EnvSecret``), item helpers (``need``, ``count``, ``iso_time``, ``ItemError``,
``brand_terms``, ``expand_links``, ``html_to_text``; from ``core/sdk/sources.py``) and the stream
toolkit (paginators, ``paginate``, ``Watermark``, ``SeenIds``, sweeps; from ``core/sdk/streams.py``). An item a
source cannot read goes in ``Page.errors``, as a plain string or a ``SkippedItem`` that keeps its raw
payload for the quarantine; ``read_mention`` reads JSON in socialcrm's own mention shape.

The SDK's code lives in ``socialcrm.core.sdk``, the lowest layer; nothing here imports the store, the
engine, the services, the CLI or the API (``tests/test_layers.py`` proves it).
"""
from .core.sdk.brand import Brand
from .core.sdk.commandline import config_option
from .core.sdk.connector import PluginContext, Sink, Source
from .core.sdk.errors import (AuthError, ConfigError, FatalError, HttpFailure, PluginError, RetriableError,
                              TransportError)
from .core.sdk.hookspecs import hookimpl
from .core.sdk.htmltext import html_to_text
from .core.sdk.http import (HttpClient, RateLimitHeaders, ResponseAction, default_action, parse_retry_after,
                            safe_url)
from .core.sdk.schema import StrictSchema
from .core.sdk.model import (INCIDENT_TYPE, PRIORITIES, RECORD_TYPES, Author, Delivery, DeliveryStatus, Engagement,
                             IncidentSummary, Mention, Page, Record, SkippedItem, describe_validation_error,
                             isoformat, mention_from_json, read_mention, utc)
from .core.sdk.sources import (EnvSecret, ItemError, SourceSchema, brand_terms, count, epoch_time, expand_links, id_key,
                               iso_time, missing_secret_message, need, parse_time, quick, require_env_secret, spans_of,
                               stamp, unique, unreachable, whole_count)
from .core.sdk.streams import (LinkHeaderPaginator, PageNumberPaginator, PaginationLoop, Paginator, SeenIds,
                               StreamCursor, TokenPaginator, Watermark, chain_streams, end_backfill, end_sweep, link_param,
                               new_sweep, paginate, sweep_saw)

__version__ = "0.1.0"

__all__ = [
    "AuthError", "Author", "Brand", "brand_terms", "chain_streams", "config_option", "ConfigError", "count",
    "default_action", "Delivery", "DeliveryStatus", "describe_validation_error", "end_backfill", "end_sweep",
    "Engagement", "EnvSecret", "epoch_time", "expand_links", "FatalError", "hookimpl", "html_to_text",
    "HttpClient", "HttpFailure", "id_key", "INCIDENT_TYPE", "IncidentSummary", "iso_time", "isoformat", "ItemError", "link_param",
    "LinkHeaderPaginator", "Mention", "mention_from_json", "missing_secret_message", "need", "new_sweep",
    "Page", "PageNumberPaginator", "paginate", "PaginationLoop", "Paginator", "parse_retry_after", "parse_time",
    "PluginContext", "PluginError", "PRIORITIES", "quick", "RateLimitHeaders", "read_mention", "Record",
    "RECORD_TYPES", "require_env_secret", "ResponseAction", "RetriableError", "safe_url", "SeenIds", "Sink",
    "SkippedItem", "Source", "SourceSchema", "spans_of", "stamp", "StreamCursor", "StrictSchema", "sweep_saw", "TokenPaginator",
    "TransportError", "unique", "unreachable", "utc", "Watermark", "whole_count",
]
