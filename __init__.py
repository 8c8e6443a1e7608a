"""socialcrm: wire social media into the systems a company already runs.

The public face for plugin authors: everything a source or sink plugin needs, without reaching into
``socialcrm.core``.

    from socialcrm import hookimpl, Source, Sink, Mention, Record, Delivery
"""
from .core.connector import PluginContext, Sink, Source
from .core.errors import AuthError, ConfigError, FatalError, PluginError, RetriableError
from .core.hookspecs import hookimpl
from .core.model import Author, Delivery, DeliveryStatus, Engagement, Mention, Page, Record

__version__ = "0.1.0"

__all__ = [
    "AuthError", "Author", "ConfigError", "Delivery", "DeliveryStatus", "Engagement", "FatalError",
    "Mention", "Page", "PluginContext", "PluginError", "Record", "RetriableError", "Sink", "Source",
    "hookimpl",
]
