"""``GET /metrics``: Prometheus metrics, read from the store at scrape time.

The store is the truth shared by every process (the API, ``socialcrm run``, Celery workers), so the
gauges are computed from it on each scrape rather than counted in this process. Only the API's own
request counter lives in memory.
"""
from __future__ import annotations

import re
import time
from typing import Iterator

from flask import Flask, Response, request
from flask_smorest import Blueprint
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from socialcrm.core.services.status import snapshot

from .auth import needs
from .state import ApiState

blp = Blueprint("metrics", __name__, description="Prometheus metrics")

STATES = ("pending", "in_flight", "retry", "delivered", "dead")


class StoreCollector(Collector):
    """Records by type, deliveries by sink and state, the outbox backlog and its oldest row, paused
    sources, open circuits and the quarantine, all from the store."""

    def __init__(self, api_state: ApiState):
        self.state = api_state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        st = self.state
        seen = snapshot(st.runtime.store, st.config, now=st.clock())
        records = GaugeMetricFamily("socialcrm_records", "Records held, by type", labels=["type"])
        for type_, count in sorted(seen["records_by_type"].items()):
            records.add_metric([type_], count)
        yield records
        report = seen["delivery"]
        deliveries = GaugeMetricFamily("socialcrm_deliveries", "Outbox rows by sink and state",
                                       labels=["sink", "state"])
        oldest = GaugeMetricFamily("socialcrm_outbox_oldest_pending_seconds",
                                   "Age of the oldest undelivered outbox row, by sink", labels=["sink"])
        circuit = GaugeMetricFamily("socialcrm_sink_circuit_open", "1 when the sink's circuit breaker is open",
                                    labels=["sink"])
        for row in report["sinks"]:
            for name in STATES:
                deliveries.add_metric([row["sink"], name], row[name])
            oldest.add_metric([row["sink"]], row["oldest_pending_s"] or 0.0)
            circuit.add_metric([row["sink"]], 1.0 if row["circuit"]["state"] == "open" else 0.0)
        yield deliveries
        yield oldest
        yield circuit
        backlog = report["backpressure"]
        yield GaugeMetricFamily("socialcrm_outbox_pending", "Outbox rows not yet delivered or dead",
                                value=backlog["open"])
        paused = GaugeMetricFamily("socialcrm_source_paused",
                                   "1 when a source is not being polled (disabled, or the outbox is full)",
                                   labels=["source"])
        for name, is_paused in seen["sources_paused"].items():
            paused.add_metric([name], 1.0 if is_paused else 0.0)
        yield paused
        yield GaugeMetricFamily("socialcrm_sources_paused", "Sources not being polled",
                                value=sum(seen["sources_paused"].values()))
        yield GaugeMetricFamily("socialcrm_quarantined_items", "Unreadable input items held in the quarantine",
                                value=report["quarantine"]["held"])


_CONVERTER = re.compile(r"<(?:[^<>:]+:)?(\w+)>")


def url_template(rule: str) -> str:
    """A Flask URL rule as people read it, and as the OpenAPI spec writes it: ``/dead-letters/{outbox_id}``
    for ``/dead-letters/<int(min=1):outbox_id>``."""
    return _CONVERTER.sub(r"{\1}", rule)


def install(app: Flask, api_state: ApiState) -> CollectorRegistry:
    """Give the app its own registry (so several apps in one process never clash) and count requests."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StoreCollector(api_state))
    requests_total = Counter("socialcrm_api_requests", "API requests by method, route and status",
                             ["method", "route", "status"], registry=registry)
    seconds = Counter("socialcrm_api_request_seconds", "Time spent answering API requests",
                      ["method", "route"], registry=registry)

    @app.before_request
    def _start_timer():
        request.environ["socialcrm.started"] = time.perf_counter()

    @app.after_request
    def _count(response):
        route = url_template(request.url_rule.rule) if request.url_rule else "unmatched"
        requests_total.labels(request.method, route, str(response.status_code)).inc()
        started = request.environ.get("socialcrm.started")
        if started is not None:
            seconds.labels(request.method, route).inc(time.perf_counter() - started)
        return response

    app.extensions["socialcrm.metrics"] = registry
    return registry


@blp.route("/metrics", methods=["GET"])
@needs(blp, "read")
@blp.response(200, content_type=CONTENT_TYPE_LATEST, description="Prometheus text format")
def metrics():
    """Prometheus metrics: records by type, deliveries by sink and state, outbox backlog, paused sources."""
    from flask import current_app
    registry = current_app.extensions["socialcrm.metrics"]
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_LATEST)
