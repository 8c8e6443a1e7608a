"""hubspot sink: HubSpot CRM tickets (or contacts) through the CRM v3 batch endpoints, up to 100 a call.

    [sinks.hubspot_desk]
    plugin = "hubspot"
    token = "${HUBSPOT_TOKEN}"              # a private app's access token
    object = "tickets"                      # or "contacts"
    id_property = "socialcrm_record_id"     # a custom property created with "Require unique values"
    write = "upsert"                        # or "create": batch/read by id_property, then batch/create
    pipeline = "0"                          # tickets: the pipeline and stage new tickets start in
    pipeline_stage = "1"
    # priority_map = { P1 = "HIGH", P2 = "HIGH", P3 = "MEDIUM", P4 = "LOW" }
    # properties = { hs_ticket_category = "GENERAL_INQUIRY" }   # fixed values added to every object

A ticket is keyed by the record id, a contact by the author (``network:author id``), both held in
``id_property``; writes are upserts on it, so a re-send updates the same object. Every input carries an
``objectWriteTraceId`` (a hash of that key), which HubSpot echoes on each result and on each error of
a multi-status (207) answer, so every record gets its own outcome.

A follow-up (``Record.thread_object`` names the conversation's ticket, or contact) becomes a note associated
with it: ``notes/search`` on ``id_property`` (which notes must have too, as a plain text property) finds the
notes already made for the batch, and ``notes/batch/create`` makes the rest with their association (100 a
call), so a re-sent follow-up adds no second note.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import requests
from marshmallow import fields, validate

from socialcrm import AuthError, Delivery, hookimpl, isoformat, PRIORITIES, Record, ResponseAction, Sink, StrictSchema

from . import _render as render

BATCH_MAX = 100  # CRM v3 batch endpoints take at most 100 inputs
DEFAULT_PRIORITIES = {"P1": "HIGH", "P2": "HIGH", "P3": "MEDIUM", "P4": "LOW"}
#: Error categories that time may cure; every other category rejects the record.
RETRY_CATEGORIES = frozenset({"RATE_LIMITS", "RATE_LIMIT", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT",
                              "LOCKED", "CONFLICT"})
SCOPES = {"tickets": "tickets", "contacts": "crm.objects.contacts.read and crm.objects.contacts.write"}
#: HubSpot-defined association types from a note to the object the conversation has.
NOTE_TO = {"tickets": 228, "contacts": 202}


class HubSpotSinkConfig(StrictSchema):
    """Private app token, the object type, the unique property holding the key, and how to write."""

    # error_messages go through str.format(): "${{VAR}}" reads "${VAR}".
    token = fields.String(required=True, validate=validate.Length(min=1), error_messages={
        "required": 'missing: set token = "${{HUBSPOT_TOKEN}}" and export HUBSPOT_TOKEN (a private app access '
                    "token)"})
    object = fields.String(load_default="tickets", validate=validate.OneOf(tuple(SCOPES)))
    id_property = fields.String(load_default="socialcrm_record_id", validate=validate.Regexp(
        r"^[a-z][a-z0-9_]*$", error="a HubSpot property's internal name: lower case, digits and _"))
    write = fields.String(load_default="upsert", validate=validate.OneOf(("upsert", "create")))
    pipeline = fields.String(load_default="0")
    pipeline_stage = fields.String(load_default="1")
    priority_map = fields.Dict(keys=fields.String(validate=validate.OneOf(PRIORITIES)), values=fields.String(),
                               load_default=lambda: dict(DEFAULT_PRIORITIES))
    properties = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    api_url = fields.Url(load_default="https://api.hubapi.com")
    timeout = fields.Float(load_default=30.0, validate=validate.Range(min=1))


@dataclass
class _Input:
    """One object to write and the records it stands for (several records can share one contact)."""

    key: str
    trace: str
    properties: dict[str, str]
    records: list[Record] = field(default_factory=list)


class HubSpotSink(Sink):
    """Upserts a HubSpot ticket per record (or a contact per author) in batches of up to 100."""

    name = "hubspot"
    ConfigSchema = HubSpotSinkConfig
    secret_fields = ("token",)
    max_batch = BATCH_MAX

    def __init__(self, config, context):
        super().__init__(config, context)
        self.base = f"{config['api_url'].rstrip('/')}/crm/v3/objects/{config['object']}"
        self.http = context.http(timeout=config["timeout"], secrets=set(context.secrets) | {config["token"]})
        self.http.session.headers["Authorization"] = f"Bearer {config['token']}"
        self.notes = f"{config['api_url'].rstrip('/')}/crm/v3/objects/notes"
        self._noted: dict[str, str] = {}  # record id -> note id, for a retry before search sees the note

    # --- the hook points: check and send ---

    def check(self) -> str:
        """Read one object of the configured type: proves the token and its read scope."""
        data = self._call("GET", self.base, params={"limit": 1, "properties": self.config["id_property"]}).json()
        cfg = self.config
        count = "at least one" if data.get("results") else "none yet"
        return (f"token works: can read {cfg['object']} ({count} in the account); writes {cfg['write']} by the "
                f"unique property {cfg['id_property']} (the private app needs {SCOPES[cfg['object']]})")

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        out = self._send_followups(list({r.id: r for r in records if r.thread_object}.values()))
        records = [r for r in records if not r.thread_object]
        if not records:
            return out
        return out + self._send_objects(records)

    def _send_objects(self, records: Sequence[Record]) -> list[Delivery]:
        inputs: dict[str, _Input] = {}
        for record in records:
            key = self.key(record)
            item = inputs.get(key) or inputs.setdefault(key, _Input(key, render.record_hash(key, 24),
                                                                    self.properties(record)))
            if all(r.id != record.id for r in item.records):
                item.records.append(record)
        items = list(inputs.values())
        if self.config["write"] == "create":
            return self._read_then_create(items)
        return self._write("batch/upsert", items)

    # --- mapping ---

    def key(self, record: Record) -> str:
        """What the unique property holds: the record id for tickets, the author for contacts."""
        if self.config["object"] == "contacts":
            return f"{record.network}:{record.author.id or record.author.handle or record.id}"
        return record.id

    def properties(self, record: Record) -> dict[str, str]:
        """The HubSpot properties for one record (the README maps each one)."""
        cfg = self.config
        if cfg["object"] == "contacts":
            props = {"firstname": render.one_line(record.author.name or render.handle(record), 100)}
            if render.profile_url(record):
                props["website"] = render.profile_url(record)
            if record.network == "x" and record.author.handle:
                props["twitterhandle"] = record.author.handle.lstrip("@")
        else:
            props = {"subject": render.headline(record, 200), "content": _ticket_body(record),
                     "hs_pipeline": cfg["pipeline"], "hs_pipeline_stage": cfg["pipeline_stage"]}
            if cfg["priority_map"].get(record.priority):
                props["hs_ticket_priority"] = cfg["priority_map"][record.priority]
        props.update(cfg["properties"])
        props[cfg["id_property"]] = self.key(record)
        return props

    # --- follow-ups: a note on the conversation's object ---

    def _send_followups(self, records: list[Record]) -> list[Delivery]:
        out: list[Delivery] = []
        for start in range(0, len(records), BATCH_MAX):
            chunk = records[start:start + BATCH_MAX]
            found = self._notes_made([r.id for r in chunk if r.id not in self._noted])
            found.update((r.id, self._noted[r.id]) for r in chunk if r.id in self._noted)
            out.extend(Delivery.delivered(r.id, found[r.id]) for r in chunk if r.id in found)
            missing = [r for r in chunk if r.id not in found]
            if missing:
                out.extend(self._create_notes(missing))
        return out

    def _notes_made(self, record_ids: list[str]) -> dict[str, str]:
        """Record id -> note id for the follow-ups that already have their note (``notes/search``)."""
        if not record_ids:
            return {}
        idp = self.config["id_property"]
        response = self._call("POST", f"{self.notes}/search", json={
            "filterGroups": [{"filters": [{"propertyName": idp, "operator": "IN", "values": record_ids}]}],
            "properties": [idp], "limit": BATCH_MAX})
        data = _json(response)
        if response.status_code >= 300:
            raise AuthError(f"HubSpot cannot search notes by {idp} ({_describe(data, response.status_code)}): "
                            f"create {idp} as a note property too, and give the private app the notes scopes")
        return {(r.get("properties") or {}).get(idp): str(r.get("id")) for r in data.get("results") or []}

    def _create_notes(self, records: list[Record]) -> list[Delivery]:
        idp = self.config["id_property"]
        items = [_Input(r.id, render.record_hash(r.id, 24), {}, [r]) for r in records]
        inputs = [{"objectWriteTraceId": item.trace,
                   "properties": {"hs_timestamp": isoformat(r.created_at), "hs_note_body": _ticket_body(r), idp: r.id},
                   "associations": [{"to": {"id": r.thread_object}, "types": [
                       {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO[self.config["object"]]}]}]}
                  for item, r in zip(items, records)]
        response = self._call("POST", f"{self.notes}/batch/create", json={"inputs": inputs})
        data = _json(response)
        by_trace = {item.trace: item for item in items}
        outcomes: dict[str, Delivery] = {}
        if response.status_code < 300 or response.status_code == 207:
            for result in data.get("results") or []:
                item = by_trace.get(result.get("objectWriteTraceId"))
                if item:
                    self._noted[item.key] = str(result.get("id"))
                    outcomes[item.key] = Delivery.delivered(item.key, str(result.get("id")))
            for error in data.get("errors") or []:
                self._apply_error(error, by_trace, outcomes)
            # Not retried blind: a note HubSpot made but did not report is found by the search next time.
            return self._complete(items, outcomes, "HubSpot's answer did not mention this note")
        self._apply_error(data, by_trace, outcomes)
        return self._complete(items, outcomes, f"HubSpot refused the notes: {_describe(data, response.status_code)}") \
            if outcomes else [Delivery.rejected(r.id, _describe(data, response.status_code)) for r in records]

    # --- writing ---

    def _write(self, endpoint: str, items: list[_Input]) -> list[Delivery]:
        out: list[Delivery] = []
        for start in range(0, len(items), BATCH_MAX):
            out.extend(self._write_batch(endpoint, items[start:start + BATCH_MAX]))
        return out

    def _write_batch(self, endpoint: str, items: list[_Input]) -> list[Delivery]:
        idp = self.config["id_property"]
        if endpoint == "batch/upsert":
            inputs = [{"idProperty": idp, "id": i.key, "objectWriteTraceId": i.trace, "properties": i.properties}
                      for i in items]
        else:
            inputs = [{"objectWriteTraceId": i.trace, "properties": i.properties} for i in items]
        response = self._call("POST", f"{self.base}/{endpoint}", json={"inputs": inputs})
        data = _json(response)
        by_trace = {i.trace: i for i in items}
        by_key = {i.key: i for i in items}
        outcomes: dict[str, Delivery] = {}

        if response.status_code < 300 or response.status_code == 207:
            for result in data.get("results") or []:
                item = by_trace.get(result.get("objectWriteTraceId")) or by_key.get(
                    (result.get("properties") or {}).get(idp))
                if item:
                    for record in item.records:
                        outcomes[record.id] = Delivery.delivered(record.id, str(result.get("id")))
            for error in data.get("errors") or []:
                self._apply_error(error, by_trace, outcomes)
            return self._complete(items, outcomes, "HubSpot's answer did not mention this record")

        # A 4xx other than 401/403/429 refuses the whole batch; HubSpot writes none of it.
        if response.status_code == 404:
            raise AuthError(f"HubSpot has no {endpoint} for {self.config['object']} at {self.config['api_url']}: "
                            f"check object and api_url")
        if response.status_code == 409:  # another writer made one of these objects first: read it next time
            reason = f"HubSpot: {_describe(data, 409)}; the next attempt finds the existing object"
            return [Delivery.retry(r.id, reason) for item in items for r in item.records]
        self._apply_error(data, by_trace, outcomes)
        if outcomes:
            return self._complete(items, outcomes, "held back by another record's error in the same batch")
        if len(items) == 1:
            return [Delivery.rejected(r.id, _describe(data, response.status_code)) for r in items[0].records]
        # The error names no input: write them one by one, so only the bad ones are refused.
        self.log.info("HubSpot refused a batch of %d without saying which input; retrying them one by one",
                      len(items))
        return [d for item in items for d in self._write_batch(endpoint, [item])]

    def _read_then_create(self, items: list[_Input]) -> list[Delivery]:
        out: list[Delivery] = []
        for start in range(0, len(items), BATCH_MAX):
            chunk = items[start:start + BATCH_MAX]
            found = self._read(chunk)
            for item in chunk:
                if item.key in found:
                    out.extend(Delivery.delivered(r.id, found[item.key]) for r in item.records)
            missing = [i for i in chunk if i.key not in found]
            if missing:
                out.extend(self._write_batch("batch/create", missing))
        return out

    def _read(self, items: list[_Input]) -> dict[str, str]:
        """Key -> HubSpot id for the objects that already exist (``batch/read`` by the unique property)."""
        idp = self.config["id_property"]
        response = self._call("POST", f"{self.base}/batch/read", json={
            "idProperty": idp, "properties": [idp], "inputs": [{"id": i.key} for i in items]})
        data = _json(response)
        if response.status_code >= 300 and response.status_code != 207:
            raise AuthError(f"HubSpot cannot read {self.config['object']} by {idp} "
                            f"({_describe(data, response.status_code)}): create {idp} as a property with unique "
                            f"values, or check id_property")
        return {(r.get("properties") or {}).get(idp): str(r.get("id")) for r in data.get("results") or []}

    def _apply_error(self, error: dict, by_trace: dict[str, _Input], outcomes: dict[str, Delivery]) -> None:
        traces = (error.get("context") or {}).get("objectWriteTraceId") or []
        category = str(error.get("category") or "")
        for trace in traces:
            item = by_trace.get(trace)
            if not item:
                continue
            reason = _describe(error, None)
            for record in item.records:
                outcomes[record.id] = (Delivery.retry(record.id, reason) if category in RETRY_CATEGORIES
                                       else Delivery.rejected(record.id, reason))

    @staticmethod
    def _complete(items: list[_Input], outcomes: dict[str, Delivery], why: str) -> list[Delivery]:
        """Every record gets an outcome: one HubSpot did not account for is tried again (upserts are safe)."""
        for item in items:
            for record in item.records:
                outcomes.setdefault(record.id, Delivery.retry(record.id, why))
        return list(outcomes.values())

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.http.request(method, url, classify=False, **kwargs)
        except AuthError as exc:
            raise AuthError(self._explain_refusal(exc.response), response=exc.response) from None

    def _explain_refusal(self, refusal: requests.Response) -> str:
        """Plain words for a 401 or 403, from the category and scopes HubSpot put in the body."""
        data = _json(refusal)
        status = refusal.status_code
        needed = SCOPES[self.config["object"]]
        if status == 403:
            scopes = [scope for e in data.get("errors") or [] if isinstance(e, dict)
                      for scope in (e.get("context") or {}).get("requiredGranularScopes") or []]
            named = f" (HubSpot asks for: {', '.join(scopes)})" if scopes else ""
            return (f"HubSpot refused the call: {data.get('category') or 'FORBIDDEN'}{named}: give the private app "
                    f"the {needed} scope, then copy its token again into HUBSPOT_TOKEN")
        return (f"HubSpot refused the token: {data.get('category') or 'INVALID_AUTHENTICATION'}: check token "
                f"(HUBSPOT_TOKEN) is the private app's current access token")

    def interpret_response(self, response: requests.Response) -> ResponseAction | None:
        """A 429 without ``Retry-After`` waits for the window HubSpot names.

        HubSpot names the exhausted policy in the body (``policyName``: ``DAILY``, ``SECONDLY``,
        ``TEN_SECONDLY_ROLLING``) and the window in ``X-HubSpot-RateLimit-Interval-Milliseconds``: a
        short window is waited out; the daily limit waits for midnight UTC (HubSpot resets it at
        midnight in the account's time zone, which the API does not give).
        """
        if response.status_code != 429 or "Retry-After" in response.headers:
            return None
        try:
            policy = str(response.json().get("policyName", "")).upper()
        except (ValueError, AttributeError):
            policy = ""
        if policy == "DAILY":
            now = self.http.clock()
            wait = 86400 - now % 86400
        else:
            try:
                wait = float(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")) / 1000
            except ValueError:
                wait = 10.0
        return ResponseAction.RATE_LIMITED.because(f"HubSpot {policy or 'rate'} limit", max(1, int(round(wait))))


def _json(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {"message": (response.text or "")[:300]}
    return data if isinstance(data, dict) else {"message": str(data)[:300]}


def _describe(error: dict, status: int | None) -> str:
    """``VALIDATION_ERROR: Property values were not valid (hs_ticket_priority: ...)``."""
    head = f"HTTP {status}: " if status else ""
    details = [d.get("message") for d in error.get("errors") or [] if isinstance(d, dict) and d.get("message")]
    more = f" ({'; '.join(details)})" if details else ""
    return f"{head}{error.get('category') or 'error'}: {error.get('message') or 'no message'}{more}"


def _ticket_body(record: Record) -> str:
    lines = [record.content or "(no text)", ""]
    lines += [f"{label}: {value}" for label, value in render.facts(record)]
    if render.post_url(record):
        lines.append(f"Post: {render.post_url(record)}")
    if record.reasons:
        lines += ["", "Why:"] + [f"- {reason}" for reason in record.reasons]
    return "\n".join(lines)


@hookimpl
def register_sinks(register):
    """Register the HubSpot sink."""
    register(HubSpotSink)


__all__ = ["HubSpotSink", "HubSpotSinkConfig"]
