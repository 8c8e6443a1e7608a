"""socialcrm: wire social media into the systems a company already runs.

The public face for plugin authors, the plugin SDK: everything a source or sink plugin needs, without
reaching into ``socialcrm.core``. Built-in plugins import only this, exactly as third-party ones do.

    from socialcrm import hookimpl, Source, Sink, Mention, Record, Delivery

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
from .core.sdk.model import (PRIORITIES, RECORD_TYPES, Author, Delivery, DeliveryStatus, Engagement, Mention, Page,
                             Record, describe_validation_error, isoformat, mention_from_json, utc)
from .core.sdk.sourceutil import brand_terms, parse_time, quick, require_env_secret, stamp, unreachable

__version__ = "0.1.0"

__all__ = [
    "AuthError", "Author", "Brand", "ConfigError", "Delivery", "DeliveryStatus", "Engagement", "FatalError",
    "HttpClient", "HttpFailure", "Mention", "PRIORITIES", "Page", "PluginContext", "PluginError", "RECORD_TYPES",
    "RateLimitHeaders", "Record", "ResponseAction", "RetriableError", "Sink", "Source", "TransportError",
    "brand_terms", "default_action", "describe_validation_error", "hookimpl", "html_to_text", "isoformat",
    "mention_from_json", "parse_retry_after", "parse_time", "quick", "require_env_secret", "safe_url", "stamp",
    "unreachable", "utc",
    "StrictSchema", "config_option",
]
