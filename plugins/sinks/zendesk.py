"""zendesk sink: records become Zendesk Support tickets, created in bulk and never twice.

    [sinks.zendesk]
    plugin = "zendesk"
    subdomain = "acme"                       # acme.zendesk.com
    email = "social-bot@acme.com"
    api_token = "${ZENDESK_API_TOKEN}"       # or oauth_token = "${ZENDESK_OAUTH_TOKEN}"
    group_id = 360001234567

One send, up to 1,000 records:

1. **Already there?** Tickets carry ``external_id`` = the record id and the marker tag. One Export Search
   call lists our tickets created since the oldest mention of the batch (``tags:socialcrm created>T``); those
   whose ``external_id`` is in the batch are answered as delivered without a write. Where that window holds
   more tickets than checking one by one would cost, ``GET /api/v2/tickets?external_id=`` is asked per record.
   Tickets this process created (or whose job it is still polling) are known without a call at all.
2. **Requester.** Each author is a Zendesk end user keyed by their social identity (``external_id`` =
   ``network:author id``), made or matched with ``users/create_or_update_many`` (100 a call); known ones are
   cached.
3. **Tickets.** ``tickets/create_many`` (100 a call); the job statuses are polled together
   (``job_statuses/show_many``) until done, and each result maps back to its record by ``index``.
4. **Incidents.** An incident record (``type = "incident"``) becomes a ``problem`` ticket, sent before the
   rest of the batch; each member record (``record.incident`` set) becomes an ``incident`` ticket whose
   ``problem_id`` is that problem ticket (found by its ``external_id`` when this process did not make it).
   A member whose problem ticket does not exist yet waits for it.

A follow-up (``Record.thread_object`` names the conversation's ticket) becomes a comment on that ticket
through ``tickets/update_many`` (100 a call, one entry per ticket per call), public when the record is the
brand's own reply or ``comment_public`` is set. Each carries the tag ``<marker_tag>_fu_<sha256(record id)[:16]>``
(``additional_tags``), and the same Export Search (``tags:<marker_tag> updated>T``) finds the tickets that
already have it, so a re-sent follow-up adds no second comment. A closed ticket cannot take a comment:
Zendesk's refusal sends the follow-up back for a moment, and the next attempt opens a follow-up ticket
(``via_followup_source_id`` = the closed ticket), created like any other ticket.

Search is eventually consistent (Zendesk indexes new tickets within minutes), which is why the sink also
remembers what it created and the jobs it has not finished reading.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Sequence

import requests
from marshmallow import ValidationError, fields, validate, validates_schema

from socialcrm import (
    AuthError, Delivery, DeliveryStatus, FatalError, hookimpl, INCIDENT_TYPE, isoformat, PRIORITIES,
    RateLimitHeaders, Record, RECORD_TYPES, RetriableError, Sink, StrictSchema)

from ._crm import check_source, description, display_name, social_identity, subject, value_of

#: Where the vendor says how much of its rate limit is left and when it resets.
ZENDESK_STYLE = RateLimitHeaders("ratelimit-remaining", "ratelimit-reset", "delta")

log = logging.getLogger(__name__)

BULK_SIZE = 100  # tickets/create_many and users/create_or_update_many take at most 100 objects
EXPORT_PAGE = 1000  # Export Search Results returns at most 1,000 results a page
TICKET_TYPES = ("problem", "incident", "question", "task")
DEFAULT_PRIORITIES = {"P1": "urgent", "P2": "high", "P3": "normal", "P4": "low"}
DEFAULT_TYPES = {"case": "problem", "rant": "incident", "query": "question", "lead": "task", "rfe": "task"}
DONE = ("completed", "failed", "killed")
_TAG_CHARS = re.compile(r"[^a-z0-9_\-/]+")


class ZendeskSinkConfig(StrictSchema):
    """The ``[sinks.NAME]`` block of a Zendesk sink; see the README section "Zendesk"."""

    subdomain = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]*$"))
    base_url = fields.Url(load_default=None, allow_none=True, require_tld=False)
    email = fields.Email(load_default=None, allow_none=True)
    api_token = fields.String(load_default=None, allow_none=True)
    oauth_token = fields.String(load_default=None, allow_none=True)
    priority_map = fields.Dict(keys=fields.String(validate=validate.OneOf(PRIORITIES)),
                               values=fields.String(validate=validate.OneOf(("urgent", "high", "normal", "low"))),
                               load_default=lambda: dict(DEFAULT_PRIORITIES))
    type_map = fields.Dict(keys=fields.String(validate=validate.OneOf(RECORD_TYPES)),
                           values=fields.String(validate=validate.OneOf(TICKET_TYPES)),
                           load_default=lambda: dict(DEFAULT_TYPES))
    marker_tag = fields.String(load_default="socialcrm", validate=validate.Regexp(r"^[a-z0-9_\-]+$"))
    tags = fields.List(fields.String(), load_default=list)
    group_id = fields.Integer(load_default=None, allow_none=True)
    groups = fields.Dict(keys=fields.String(), values=fields.Integer(), load_default=dict)
    custom_fields = fields.Dict(keys=fields.String(), values=fields.Integer(), load_default=dict)
    requester = fields.String(load_default="author", validate=validate.OneOf(("author", "none")))
    comment_public = fields.Boolean(load_default=False)
    check_skew = fields.Float(load_default=600.0, validate=validate.Range(min=0))
    poll_interval = fields.Float(load_default=2.0, validate=validate.Range(min=0))
    poll_timeout = fields.Float(load_default=90.0, validate=validate.Range(min=0))
    timeout = fields.Float(load_default=30.0, validate=validate.Range(min=1))

    @validates_schema
    def _credentials(self, data, **_):
        errors: dict[str, list[str]] = {}
        if not data.get("subdomain") and not data.get("base_url"):
            errors["subdomain"] = ['missing: set subdomain = "acme" for acme.zendesk.com (or base_url)']
        if not data.get("oauth_token"):
            if not data.get("api_token"):
                errors["api_token"] = ['missing: set api_token = "${ZENDESK_API_TOKEN}" in this block and export '
                                       'ZENDESK_API_TOKEN (or oauth_token = "${ZENDESK_OAUTH_TOKEN}")']
            if not data.get("email"):
                errors["email"] = ["missing: the email of the agent the API token belongs to"]
        for name in data["custom_fields"]:
            problem = check_source(name)
            if problem:
                errors.setdefault("custom_fields", []).append(f"{name}: {problem}")
        if errors:
            raise ValidationError(errors)


@dataclass
class _Job:
    """A Zendesk background job and, for each index of its payload, the key it was for."""

    id: str
    keys: list[str]
    kind: str  # "tickets" or "users"
    status: dict[str, Any] = field(default_factory=dict)


class ZendeskSink(Sink):
    """Creates tickets with ``tickets/create_many``, idempotently by ``external_id``."""

    name = "zendesk"
    ConfigSchema = ZendeskSinkConfig
    secret_fields = ("api_token", "oauth_token")
    # Ten create_many calls of 100 per send, so the existence check and the job polls are shared by 1,000
    # records (a send of 100 would spend three calls on every hundred). Set lease_seconds above poll_timeout.
    max_batch = 1000

    def __init__(self, config: dict[str, Any], context, *, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None):
        super().__init__(config, context)
        secrets = {config.get(f) for f in self.secret_fields} | set(context.secrets)
        options: dict[str, Any] = {"timeout": config["timeout"], "rate_limit": ZENDESK_STYLE,
                                   "secrets": {s for s in secrets if s}}
        options.update((k, v) for k, v in (("sleep", sleep), ("clock", clock)) if v is not None)
        self.http = context.http(**options)
        # create_many is not idempotent: a request that timed out may have queued its job, so it is sent
        # once per attempt and only a 429 or 503 (Zendesk took nothing) is tried again in line.
        self.http_once = context.http(**options, max_attempts=1)
        self.sleep, self.clock = self.http.sleep, self.http.clock
        for client in (self.http, self.http_once):
            if config.get("oauth_token"):
                client.session.headers["Authorization"] = f"Bearer {config['oauth_token']}"
            else:
                client.session.auth = (f"{config['email']}/token", config["api_token"])
        self.base = (config.get("base_url") or f"https://{config['subdomain']}.zendesk.com").rstrip("/")
        self._known: dict[str, str] = {}  # record id -> ticket id, for tickets this process made or found
        self._pending: dict[str, _Job] = {}  # job id -> job whose results were not read yet
        self._uncertain: set[str] = set()  # records whose create_many got no answer: maybe created
        self._users: dict[str, int] = {}  # social identity -> Zendesk user id
        self._closed: set[str] = set()  # ticket ids Zendesk refused a follow-up's comment on: closed
        self._problems: dict[str, int] = {}  # incident record id -> its problem ticket's id
        self._bulk_users = True

    # --- HTTP ---

    def _request(self, method: str, path: str, *, allow: tuple[int, ...] = (), once: bool = False,
                 **kwargs: Any) -> requests.Response:
        """One call; ``allow`` lists 401/403 statuses the caller reads itself instead of an ``AuthError``;
        ``once`` sends it a single time (no in-line retry)."""
        client = self.http_once if once else self.http
        try:
            return client.request(method, self.base + path, classify=False, **kwargs)
        except AuthError as exc:
            if exc.status in allow:
                return exc.response
            raise AuthError(self._explain_refusal(exc.response), response=exc.response) from None

    def _explain_refusal(self, response: requests.Response | None) -> str:
        if response is None:
            return f"{self.context.instance}: Zendesk refused the credentials"
        detail = _error_text(response)
        if response.status_code == 401:
            how = ("the OAuth token is invalid or expired" if self.config.get("oauth_token") else
                   "check email and api_token, and that token access is on (Admin Center > Apps and "
                   "integrations > Zendesk API)")
            return self.http.redact(f"{self.context.instance}: Zendesk could not authenticate you ({detail}): {how}")
        return self.http.redact(f"{self.context.instance}: Zendesk refused the call (403 {detail}): the API user "
                                "must be an agent (or admin) allowed to create tickets and manage end users")

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise FatalError(self.http.redact(f"{self.context.instance}: {method} {path.split('?')[0]} failed "
                                              f"({response.status_code} {_error_text(response)})"), response=response)
        return response.json()

    # --- 1. which records already have a ticket ---

    def _existing(self, records: Sequence[Record]) -> dict[str, str]:
        """Ticket ids by record id for records that already have a ticket."""
        found: dict[str, str] = {}
        # A create_many that got no answer may have made these moments ago, before search indexed them:
        # the list endpoint reads the tickets themselves.
        unsure = [r.id for r in records if r.id in self._uncertain]
        found.update(self._by_external_id(unsure))
        self._uncertain.difference_update(unsure)
        rest = [r for r in records if r.id not in unsure]
        if not rest:
            return found
        wanted = {r.id for r in rest}
        since = min(r.created_at for r in rest) - timedelta(seconds=self.config["check_skew"])
        params = {"query": f"tags:{self.config['marker_tag']} created>{isoformat(since)}",
                  "filter[type]": "ticket", "page[size]": EXPORT_PAGE}
        pages = 0
        while True:
            body = self._json("GET", "/api/v2/search/export", params=params)
            pages += 1
            for ticket in body.get("results", []):
                if ticket.get("external_id") in wanted:
                    found[ticket["external_id"]] = str(ticket["id"])
            more = (body.get("meta") or {}).get("has_more") and (body.get("meta") or {}).get("after_cursor")
            if not more:
                return found
            if len(wanted - set(found)) <= pages:
                # Asking per record now costs no more than the pages already read: stop reading a window
                # that may hold thousands more (this bounds the check at twice the cheaper way).
                break
            params = {**params, "page[after]": body["meta"]["after_cursor"]}
        log.info("%s: %d tickets since %s; checking %d records one by one", self.context.instance,
                 pages * EXPORT_PAGE, isoformat(since), len(wanted - set(found)))
        found.update(self._by_external_id(sorted(wanted - set(found))))
        return found

    def _by_external_id(self, record_ids: Sequence[str]) -> dict[str, str]:
        found = {}
        for record_id in record_ids:
            tickets = self._json("GET", "/api/v2/tickets", params={"external_id": record_id}).get("tickets", [])
            if tickets:
                found[record_id] = str(min(t["id"] for t in tickets))  # the first one made is the one to keep
        return found

    # --- 2. requesters ---

    def _requesters(self, records: Sequence[Record], deadline: float) -> set[str]:
        """Make or match an end user for every new social identity in ``records`` (fills ``_users``).

        Returns the identities whose job had not finished by ``deadline``: their records wait, because a
        ticket made without its requester would stay that way.
        """
        people: dict[str, Record] = {}
        for record in records:
            identity = social_identity(record)
            if identity and identity not in self._users:
                people.setdefault(identity, record)
        if not people:
            return set()
        users = [{"external_id": identity, "name": display_name(record)[:255]} for identity, record in people.items()]
        if self._bulk_users:
            jobs = []
            for start in range(0, len(users), BULK_SIZE):
                chunk = users[start:start + BULK_SIZE]
                response = self._request("POST", "/api/v2/users/create_or_update_many", json={"users": chunk},
                                         allow=(403,))
                if response.status_code == 403 and not jobs:
                    log.warning("%s: bulk user import is not enabled for this account (%s); requesters are made "
                                "one call each. Ask Zendesk to enable bulk user imports to save calls.",
                                self.context.instance, _error_text(response))
                    self._bulk_users = False
                    break
                if response.status_code >= 400:
                    log.warning("%s: users/create_or_update_many refused %d requesters (%d %s); their tickets are "
                                "requested by the API user", self.context.instance, len(chunk), response.status_code,
                                _error_text(response))
                    continue
                jobs.append(_Job(response.json()["job_status"]["id"], [u["external_id"] for u in chunk], "users"))
            if self._bulk_users:
                finished = self._poll(jobs, deadline) if jobs else []
                for job in finished:
                    self._read_user_job(job)
                done = {job.id for job in finished}
                return {key for job in jobs if job.id not in done for key in job.keys}
        for user in users:
            response = self._request("POST", "/api/v2/users/create_or_update", json={"user": user})
            if response.status_code in (200, 201):
                self._users[user["external_id"]] = response.json()["user"]["id"]
            else:
                log.warning("%s: no requester for %s (%s); the ticket is requested by the API user",
                            self.context.instance, user["external_id"], _error_text(response))
        return set()

    def _read_user_job(self, job: _Job) -> None:
        results = job.status.get("results")
        for position, result in enumerate(results if isinstance(results, list) else []):
            key = result.get("external_id")
            if key not in job.keys:
                index = result.get("index", position)
                key = job.keys[index] if isinstance(index, int) and 0 <= index < len(job.keys) else None
            if key is None:
                continue
            if result.get("error") or result.get("status") == "Failed":
                log.warning("%s: no requester for %s (%s: %s); the ticket is requested by the API user",
                            self.context.instance, key, result.get("error"), result.get("details"))
            elif result.get("id") is not None:
                self._users[key] = result["id"]

    # --- 3. tickets ---

    def _ticket(self, record: Record) -> dict[str, Any]:
        cfg = self.config
        tags = [cfg["marker_tag"], f"social_{record.network}", f"social_{record.type}",
                f"sentiment_{record.sentiment.label}", record.priority.lower(),
                f"influence_{record.influence.tier}", *cfg["tags"]]
        ticket: dict[str, Any] = {
            "external_id": record.id,
            "subject": subject(record, 150),
            "comment": {"body": description(record), "public": cfg["comment_public"]},
            "priority": cfg["priority_map"].get(record.priority),
            "tags": list(dict.fromkeys(t for t in (_TAG_CHARS.sub("_", tag.lower()) for tag in tags) if t)),
        }
        if record.thread_object in self._closed:
            ticket["via_followup_source_id"] = int(record.thread_object)
        if record.type in cfg["type_map"]:
            ticket["type"] = cfg["type_map"][record.type]
        group = cfg["groups"].get(record.team or "") or cfg["group_id"]
        if group:
            ticket["group_id"] = group
        identity = social_identity(record)
        if identity in self._users:
            ticket["requester_id"] = self._users[identity]
        if cfg["custom_fields"]:
            ticket["custom_fields"] = [{"id": field_id, "value": _field_value(value_of(record, name))}
                                       for name, field_id in cfg["custom_fields"].items()]
        ticket.update(self._incident_fields(record))
        return {k: v for k, v in ticket.items() if v is not None}

    # --- 4. incidents: a problem ticket and the incident tickets that link to it ---

    def _incident_fields(self, record: Record) -> dict[str, Any]:
        """``type: problem`` for an incident record; ``type: incident`` and ``problem_id`` for a member."""
        if record.type == INCIDENT_TYPE:
            return {"type": "problem"}
        if record.incident and record.incident in self._problems:
            return {"type": "incident", "problem_id": self._problems[record.incident]}
        return {}

    def _send_incidents_first(self, records: Sequence[Record]) -> tuple[list[Delivery], list[Record]]:
        """Create the batch's problem tickets, then find the problem ticket of every member: returns the
        deliveries so far and the records still to send (members whose problem does not exist yet wait)."""
        parents = [r for r in records if r.type == INCIDENT_TYPE]
        out = self._send_tickets(parents) if parents else []
        for delivery in out:
            if delivery.status is DeliveryStatus.DELIVERED:
                self._problems[delivery.record_id] = int(delivery.external_id)
        rest = [r for r in records if r.type != INCIDENT_TYPE]
        unknown = sorted({r.incident for r in rest if r.incident and r.incident not in self._problems})
        self._problems.update((key, int(ticket)) for key, ticket in self._by_external_id(unknown).items())
        waiting = [r for r in rest if r.incident and r.incident not in self._problems]
        out.extend(Delivery.retry(r.id, f"waiting for the problem ticket of {r.incident}",
                                  retry_after=self.config["poll_interval"]) for r in waiting)
        return out, [r for r in rest if r not in waiting]

    def _post_create_many(self, records: list[Record]) -> requests.Response | None:
        """POST tickets/create_many; ``None`` when no answer came and Zendesk may have queued the job."""
        return self._queue_job("POST", "/api/v2/tickets/create_many", {"tickets": [self._ticket(r) for r in records]},
                               len(records))

    def _queue_job(self, method: str, path: str, body: dict[str, Any], count: int) -> requests.Response | None:
        """Send a call that queues a job, once per attempt; ``None`` when no answer came and Zendesk may have
        queued it. Only a 429 or 503 (Zendesk took nothing) is tried again in line."""
        what = path.removeprefix("/api/v2/")
        for attempt in range(1, self.http.max_attempts + 1):
            try:
                return self._request(method, path, once=True, json=body)
            except RetriableError as exc:
                status = exc.status
                if status not in (429, 503):
                    log.warning("%s: %s for %d records got no answer (%s); they are checked before they are "
                                "sent again", self.context.instance, what, count, exc)
                    return None
                if attempt == self.http.max_attempts or (exc.retry_after or 0) > self.http.max_wait:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else min(60.0, 2.0 ** attempt)
                log.info("%s: Zendesk answered %d to %s; waiting %.1f s", self.context.instance, status, what,
                         wait)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _create(self, records: list[Record], out: list[Delivery]) -> list[_Job]:
        """Queue ``records`` as tickets; a 422 for a whole call is split until only the invalid record is left."""
        response = self._post_create_many(records)
        if response is None:
            self._uncertain.update(r.id for r in records)
            settle = self.config["poll_timeout"]
            out.extend(Delivery.retry(r.id, "Zendesk did not answer tickets/create_many; the ticket may exist and "
                                            "is looked up by external_id first", retry_after=settle) for r in records)
            return []
        if response.status_code == 422:
            if len(records) == 1:
                out.append(Delivery.rejected(records[0].id, f"Zendesk RecordInvalid: {_error_text(response)}"))
                return []
            middle = len(records) // 2
            return self._create(records[:middle], out) + self._create(records[middle:], out)
        if response.status_code >= 400:
            raise FatalError(self.http.redact(f"{self.context.instance}: tickets/create_many failed "
                                              f"({response.status_code} {_error_text(response)})"), response=response)
        job = _Job(response.json()["job_status"]["id"], [r.id for r in records], "tickets")
        self._pending[job.id] = job
        return [job]

    # --- follow-ups: a comment on the conversation's ticket ---

    def followup_tag(self, record: Record) -> str:
        """The tag that says this follow-up's comment is on its ticket (tags are Zendesk's searchable key)."""
        return f"{self.config['marker_tag']}_fu_{hashlib.sha256(record.id.encode()).hexdigest()[:16]}"

    def _followups_made(self, records: Sequence[Record]) -> set[str]:
        """The follow-ups whose tag is already on their ticket: one Export Search of our tickets updated since
        the oldest follow-up; follow-ups whose update_many got no answer are read from the tickets themselves."""
        tags = {self.followup_tag(r): r for r in records}
        made: set[str] = set()

        def note(ticket: dict[str, Any]) -> None:
            for tag in ticket.get("tags") or ():
                record = tags.get(tag)
                if record is not None and str(ticket.get("id")) == record.thread_object:
                    made.add(record.id)

        unsure = sorted({r.thread_object for r in records if r.id in self._uncertain})
        for start in range(0, len(unsure), BULK_SIZE):
            body = self._json("GET", "/api/v2/tickets/show_many",
                              params={"ids": ",".join(unsure[start:start + BULK_SIZE])})
            for ticket in body.get("tickets", []):
                note(ticket)
        self._uncertain.difference_update(r.id for r in records)
        since = min(r.created_at for r in records) - timedelta(seconds=self.config["check_skew"])
        params = {"query": f"tags:{self.config['marker_tag']} updated>{isoformat(since)}",
                  "filter[type]": "ticket", "page[size]": EXPORT_PAGE}
        while True:
            body = self._json("GET", "/api/v2/search/export", params=params)
            for ticket in body.get("results", []):
                note(ticket)
            meta = body.get("meta") or {}
            if not (meta.get("has_more") and meta.get("after_cursor")):
                return made
            params = {**params, "page[after]": meta["after_cursor"]}

    def _update(self, records: list[Record], out: list[Delivery]) -> list[_Job]:
        """Queue one comment per follow-up with ``tickets/update_many``; a ticket appears once per call."""
        calls: list[list[Record]] = []
        for record in records:
            for call in calls:
                if len(call) < BULK_SIZE and all(r.thread_object != record.thread_object for r in call):
                    call.append(record)
                    break
            else:
                calls.append([record])
        jobs = []
        for call in calls:
            bad = [r for r in call if not r.thread_object.isdigit()]
            out.extend(Delivery.rejected(r.id, f"Zendesk: the conversation's ticket id {r.thread_object!r} is not a "
                                               "ticket number") for r in bad)
            call = [r for r in call if r not in bad]
            if not call:
                continue
            body = {"tickets": [self._followup(r) for r in call]}
            response = self._queue_job("PUT", "/api/v2/tickets/update_many", body, len(call))
            if response is None:
                self._uncertain.update(r.id for r in call)
                out.extend(Delivery.retry(r.id, "Zendesk did not answer tickets/update_many; the comment may be on "
                                                "the ticket and is looked up first", retry_after=self.config[
                                                    "poll_timeout"]) for r in call)
                continue
            if response.status_code >= 400:
                raise FatalError(self.http.redact(f"{self.context.instance}: tickets/update_many failed "
                                                  f"({response.status_code} {_error_text(response)})"),
                                 response=response)
            job = _Job(response.json()["job_status"]["id"], [r.id for r in call], "followups")
            self._pending[job.id] = job
            jobs.append(job)
        return jobs

    def _followup(self, record: Record) -> dict[str, Any]:
        public = record.by_brand or self.config["comment_public"]
        return {"id": int(record.thread_object), "comment": {"body": description(record), "public": public},
                "additional_tags": [self.followup_tag(record)]}

    def _poll(self, jobs: list[_Job], deadline: float) -> list[_Job]:
        """Wait for ``jobs``; return those that finished (completed, failed or killed) by ``deadline``."""
        waiting = {job.id: job for job in jobs}
        finished: list[_Job] = []
        while waiting:
            self.sleep(self.config["poll_interval"])
            ids = list(waiting)
            if len(ids) == 1:
                response = self._request("GET", f"/api/v2/job_statuses/{ids[0]}")
                statuses = [response.json()["job_status"]] if response.status_code == 200 else []
            else:
                response = self._request("GET", "/api/v2/job_statuses/show_many", params={"ids": ",".join(ids)})
                statuses = response.json().get("job_statuses", []) if response.status_code == 200 else []
            if response.status_code == 404:
                # Zendesk keeps job statuses for a limited time; the existence check finds what they made.
                for job_id in ids:
                    log.warning("%s: job %s is gone; its records are checked again on the next attempt",
                                self.context.instance, job_id)
                    self._pending.pop(job_id, None)
                return finished
            if response.status_code >= 400:
                raise FatalError(f"{self.context.instance}: job status poll failed ({response.status_code} "
                                 f"{_error_text(response)})", response=response)
            for status in statuses:
                job = waiting.get(status.get("id"))
                if job is not None and status.get("status") in DONE:
                    job.status = status
                    finished.append(waiting.pop(job.id))
            if waiting and self.clock() >= deadline:
                log.warning("%s: %d Zendesk jobs still running after %.0f s; their results are read on the next "
                            "attempt", self.context.instance, len(waiting), self.config["poll_timeout"])
                break
        return finished

    def _read_ticket_job(self, job: _Job, out: list[Delivery], wanted: set[str]) -> None:
        self._pending.pop(job.id, None)
        results = job.status.get("results")
        answered: set[str] = set()
        for position, result in enumerate(results if isinstance(results, list) else []):
            index = result.get("index", position)
            if not (isinstance(index, int) and 0 <= index < len(job.keys)):
                continue
            record_id = job.keys[index]
            answered.add(record_id)
            if result.get("error") or result.get("success") is False or result.get("status") == "Failed":
                reason = ": ".join(str(x) for x in (result.get("error"), result.get("details")) if x)
                if job.kind == "followups" and "closed" in reason.lower() and result.get("id") is not None:
                    # A closed ticket is final in Zendesk: the follow-up becomes a follow-up ticket instead.
                    self._closed.add(str(result["id"]))
                    if record_id in wanted:
                        out.append(Delivery.retry(record_id, f"Zendesk ticket {result['id']} is closed ({reason}); "
                                                             "the next attempt opens a follow-up ticket",
                                                  retry_after=self.config["poll_interval"]))
                elif record_id in wanted:
                    out.append(Delivery.rejected(record_id, f"Zendesk: {reason or 'ticket not created'}"))
            else:
                self._known[record_id] = str(result["id"])
                if record_id in wanted:
                    out.append(Delivery.delivered(record_id, external_id=str(result["id"])))
        for record_id in job.keys:
            if record_id not in answered and record_id in wanted:
                message = job.status.get("message") or job.status.get("status")
                out.append(Delivery.retry(record_id, f"Zendesk job {job.id} ended {job.status.get('status')} "
                                                     f"without a result for this record ({message})"))

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        out, rest = self._send_incidents_first(records)
        return out + (self._send_tickets(rest) if rest else [])

    def _send_tickets(self, records: Sequence[Record]) -> list[Delivery]:
        out: list[Delivery] = []
        deadline = self.clock() + self.config["poll_timeout"]
        wanted = {r.id for r in records}
        pending_of = {key: job for job in self._pending.values() for key in job.keys}
        to_check = []
        for record in records:
            if record.id in self._known:
                out.append(Delivery.delivered(record.id, external_id=self._known[record.id]))
            elif record.id not in pending_of:
                to_check.append(record)
        followups = [r for r in to_check if r.thread_object and r.thread_object not in self._closed]
        to_check = [r for r in to_check if not r.thread_object or r.thread_object in self._closed]
        existing = self._existing(to_check) if to_check else {}
        if followups:
            made = self._followups_made(followups)
            existing.update((r.id, r.thread_object) for r in followups if r.id in made)
            followups = [r for r in followups if r.id not in made]
        for record_id, ticket_id in existing.items():
            self._known[record_id] = ticket_id
            out.append(Delivery.delivered(record_id, external_id=ticket_id))
        new = [r for r in to_check if r.id not in existing]
        if new and self.config["requester"] == "author":
            unresolved = self._requesters(new, deadline)
            waiting = [r for r in new if social_identity(r) in unresolved]
            out.extend(Delivery.retry(r.id, "Zendesk is still creating this author's user; the ticket waits for it",
                                      retry_after=self.config["poll_interval"]) for r in waiting)
            new = [r for r in new if social_identity(r) not in unresolved]
        jobs = list({pending_of[r.id].id: pending_of[r.id] for r in records if r.id in pending_of}.values())
        for start in range(0, len(new), BULK_SIZE):
            jobs.extend(self._create(new[start:start + BULK_SIZE], out))
        jobs.extend(self._update(followups, out) if followups else [])
        finished = self._poll(jobs, deadline) if jobs else []
        for job in finished:
            self._read_ticket_job(job, out, wanted)
        done = {d.record_id for d in out}
        for job in jobs:
            if job.id in self._pending:
                for record_id in job.keys:
                    if record_id in wanted and record_id not in done:
                        out.append(Delivery.retry(record_id, f"Zendesk job {job.id} is still running",
                                                  retry_after=self.config["poll_interval"]))
        return out

    # --- check ---

    def check(self) -> str:
        """``GET /api/v2/users/me``: are the credentials good, and is the user an agent?"""
        response = self._request("GET", "/api/v2/users/me")
        if response.status_code >= 400:
            raise AuthError(self.http.redact(f"{self.context.instance}: GET /api/v2/users/me answered "
                                             f"{response.status_code} ({_error_text(response)})"),
                            response=response)
        user = response.json().get("user") or {}
        if not user.get("id"):
            raise AuthError(f"{self.context.instance}: Zendesk took the call as anonymous: the credentials were not "
                            "accepted (check email/api_token or oauth_token)")
        if user.get("role") not in ("agent", "admin"):
            raise AuthError(f"{self.context.instance}: {user.get('email')} is an {user.get('role')}; tickets and "
                            "requesters need an agent or admin")
        return f"signed in to {self.base} as {user.get('name')} <{user.get('email')}> ({user.get('role')})"


def _field_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return str(value)


def _error_text(response: requests.Response) -> str:
    """Zendesk's error in one line: ``error``, ``description`` and the field errors in ``details``."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "")[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = [str(body.get("error") or ""), str(body.get("description") or "")]
    if isinstance(body.get("error"), dict):
        parts = [str(body["error"].get("title", "")), str(body["error"].get("message", ""))]
    details = body.get("details")
    if isinstance(details, dict):
        for name, problems in details.items():
            for problem in problems if isinstance(problems, list) else [problems]:
                text = problem.get("description") if isinstance(problem, dict) else str(problem)
                parts.append(f"{name}: {text}")
    return "; ".join(p for p in parts if p) or f"HTTP {response.status_code}"


@hookimpl
def register_sinks(register):
    register(ZendeskSink)
