"""salesforce sink: records become Cases (and Leads), upserted by external id through the REST API.

    [sinks.salesforce]
    plugin = "salesforce"
    instance_url = "https://acme.my.salesforce.com"   # your My Domain
    auth = "client_credentials"                         # or "jwt"
    client_id = "${SALESFORCE_CLIENT_ID}"
    client_secret = "${SALESFORCE_CLIENT_SECRET}"
    contact_field = "Social_Handle__c"                  # optional: link authors to existing Contacts

Every write is an upsert on ``external_id_field`` (the record id) through sObject Collections (200 records
each), up to five collections per Composite request, which Salesforce counts as ONE call toward the org's
daily limit; a re-send therefore updates the Case it made instead of opening a second one. Authors are
matched to Contacts with one batched SOQL query per send.

A follow-up (a record whose conversation already has a Case here, ``Record.thread_object``) becomes a
``CaseComment`` on that Case (or a Chatter ``FeedItem``: ``followup_object``; a conversation that began as a
Lead always gets a FeedItem). Neither object can hold an external id, so every comment ends with the marker
line ``socialcrm record <id>``: one Composite request of SOQL queries reads the markers already on the
batch's Cases (``ParentId IN (...)``) and one Composite request of sObject Collections creates the rest, so
a re-sent follow-up adds no second comment and 1,000 follow-ups cost about three calls. The ``Sforce-Limit-Info`` header is read on every
response: ``api_usage`` holds the last (used, limit) pair.

An incident record (``type = "incident"``) is upserted as a parent Case in a collection of its own, ahead of
the others; each member record's Case names it as ``Parent`` by external id reference
(``"Parent": {"<external_id_field>": "<incident id>"}``), so no lookup of the parent's Salesforce id is needed.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from urllib.parse import quote

import jwt  # PyJWT, signing with cryptography's RSA
import requests
from marshmallow import ValidationError, fields, validate, validates_schema

from socialcrm import (
    AuthError, ConfigError, Delivery, FatalError, hookimpl, INCIDENT_TYPE, PRIORITIES, Record, RECORD_TYPES, RetriableError, Sink,
    StrictSchema)

from ._crm import check_source, description, social_identity, value_of

log = logging.getLogger(__name__)

COLLECTION_SIZE = 200  # sObject Collections take at most 200 records
COMPOSITE_HEAVY = 5  # a Composite request takes at most 5 collection or query subrequests
QUERY_CHARS = 3500  # keep each SOQL IN (...) list well inside Salesforce's statement limits
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

# Per-record (and per-request) error codes that a later attempt can cure. Every other code Salesforce
# documents for a write (REQUIRED_FIELD_MISSING, STRING_TOO_LONG, INVALID_FIELD, DUPLICATE_VALUE,
# INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST, FIELD_CUSTOM_VALIDATION_EXCEPTION, INVALID_CROSS_REFERENCE_KEY,
# DUPLICATE_EXTERNAL_ID, INSUFFICIENT_ACCESS_OR_READONLY, CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY, ...) says
# something about the record or the org's setup, so the record is rejected (a replay after the fix sends it).
RETRY_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG", "QUERY_TIMEOUT", "UNKNOWN_EXCEPTION",
    "REQUEST_LIMIT_EXCEEDED", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "PROCESSING_HALTED",
    "TOO_MANY_APEX_REQUESTS", "CONCURRENT_PER_ORG_LONG_TXN_LIMIT_EXCEEDED"
})

DEFAULT_OBJECTS = {"case": "Case", "query": "Case", "rant": "Case", "lead": "Lead"}
DEFAULT_FIELDS = {
    "Case": {
        "Subject": "subject", "Description": "description", "Origin": "=Social", "Priority": "priority",
        "SuppliedName": "author_name", "Status": "=New", "Social_Type__c": "type",
        "Social_Sentiment__c": "sentiment", "Social_Influence__c": "influence", "Social_Reasons__c": "reasons",
    },
    "Lead": {
        "LastName": "author_name", "Company": "=[not provided]", "LeadSource": "=Social",
        "Description": "description", "Social_Type__c": "type", "Social_Sentiment__c": "sentiment",
        "Social_Influence__c": "influence", "Social_Reasons__c": "reasons",
    },
}
DEFAULT_PRIORITIES = {"P1": "High", "P2": "High", "P3": "Medium", "P4": "Low"}
DEFAULT_CONTACT_LINKS = {"Case": "ContactId"}
# Standard text fields Salesforce truncates nothing of: longer values fail with STRING_TOO_LONG, so we cut.
FIELD_LIMITS = {"Subject": 255, "SuppliedName": 80, "LastName": 80, "Company": 255, "Description": 32000}
CONTACT_VALUES = ("handle", "at_handle", "author_id", "social_id", "profile_url", "author_name")
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
FOLLOWUP_OBJECTS = ("CaseComment", "FeedItem")
#: The body field of each follow-up object and the most bytes it holds.
FOLLOWUP_BODY = {"CaseComment": ("CommentBody", 4000), "FeedItem": ("Body", 10000)}
CASE_PREFIX = "500"  # the key prefix of Case ids: only Cases take CaseComments
_MARKER = re.compile(r"socialcrm record (\S+)\s*$")


def _secret_hint(field_name: str) -> str:
    env = f"SALESFORCE_{field_name.upper()}"
    return f'set {field_name} = "${{{env}}}" in this block and export {env}'


class SalesforceSinkConfig(StrictSchema):
    """The ``[sinks.NAME]`` block of a Salesforce sink; see the README section "Salesforce"."""

    auth = fields.String(load_default="client_credentials", validate=validate.OneOf(["client_credentials", "jwt"]))
    instance_url = fields.Url(load_default=None, allow_none=True, require_tld=False)
    login_url = fields.Url(load_default="https://login.salesforce.com", require_tld=False)
    client_id = fields.String(required=True, validate=validate.Length(min=1),
                              # marshmallow formats this message, so its braces are doubled
                              error_messages={"required": f"missing: {_secret_hint('client_id')}".replace(
                                  "{", "{{").replace("}", "}}")})
    client_secret = fields.String(load_default=None, allow_none=True)
    username = fields.String(load_default=None, allow_none=True)
    private_key = fields.String(load_default=None, allow_none=True)
    private_key_file = fields.String(load_default=None, allow_none=True)
    api_version = fields.String(load_default="61.0", validate=validate.Regexp(r"^\d{2,3}\.0$",
                                error="give the version as NN.0, for example 61.0"))
    external_id_field = fields.String(load_default="Social_Record_Id__c", validate=validate.Length(min=1))
    objects = fields.Dict(keys=fields.String(validate=validate.OneOf(RECORD_TYPES)), values=fields.String(),
                          load_default=lambda: dict(DEFAULT_OBJECTS))
    fields_ = fields.Dict(data_key="fields", keys=fields.String(),
                          values=fields.Dict(keys=fields.String(), values=fields.String()), load_default=dict)
    priority_map = fields.Dict(keys=fields.String(validate=validate.OneOf(PRIORITIES)), values=fields.String(),
                               load_default=lambda: dict(DEFAULT_PRIORITIES))
    contact_field = fields.String(load_default="")
    contact_value = fields.String(load_default="handle", validate=validate.OneOf(CONTACT_VALUES))
    contact_links = fields.Dict(keys=fields.String(), values=fields.String(),
                                load_default=lambda: dict(DEFAULT_CONTACT_LINKS))
    followup_object = fields.String(load_default="CaseComment", validate=validate.OneOf(FOLLOWUP_OBJECTS))
    followup_public = fields.Boolean(load_default=False)
    limit_backoff = fields.Float(load_default=3600.0, validate=validate.Range(min=0))
    timeout = fields.Float(load_default=30.0, validate=validate.Range(min=1))

    @validates_schema
    def _credentials(self, data, **_):
        errors: dict[str, list[str]] = {}
        if data["auth"] == "client_credentials":
            if not data.get("client_secret"):
                errors["client_secret"] = [f'required for auth = "client_credentials": {_secret_hint("client_secret")}']
            if not data.get("instance_url"):
                errors["instance_url"] = ['required for auth = "client_credentials": your My Domain URL, '
                                          'e.g. "https://acme.my.salesforce.com"']
        else:
            if not data.get("username"):
                errors["username"] = ['required for auth = "jwt": the integration user the token is issued for']
            if not data.get("private_key") and not data.get("private_key_file"):
                errors["private_key"] = ['required for auth = "jwt": set private_key_file = "path/to/server.key", '
                                         f'or {_secret_hint("private_key")}']
        for kind, mapping in data["fields_"].items():
            for name, source in mapping.items():
                problem = source and check_source(source, ("priority",))
                if problem:
                    errors.setdefault("fields", []).append(f"{kind}.{name}: {problem}")
        if errors:
            raise ValidationError(errors)


@dataclass
class _Token:
    access_token: str
    instance_url: str


class SalesforceSink(Sink):
    """Upserts Cases and Leads by external id through Composite + sObject Collections requests."""

    name = "salesforce"
    ConfigSchema = SalesforceSinkConfig
    secret_fields = ("client_secret", "private_key")
    # Five collections of 200 in one Composite request: 1,000 records cost one call toward the daily limit.
    max_batch = COLLECTION_SIZE * COMPOSITE_HEAVY

    def __init__(self, config: dict[str, Any], context, *, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None):
        super().__init__(config, context)
        self.version = f"v{config['api_version']}"
        secrets = {config.get(f) for f in self.secret_fields} | set(context.secrets)
        timing = {k: v for k, v in (("sleep", sleep), ("clock", clock)) if v is not None}
        self.http = context.http(timeout=config["timeout"], secrets={s for s in secrets if s}, **timing)
        self.clock = self.http.clock  # the JWT's expiry is set by the same clock the HTTP layer waits on
        self.objects = config["objects"]
        self.fields = {kind: dict(mapping) for kind, mapping in DEFAULT_FIELDS.items()}
        for kind, mapping in config["fields_"].items():
            merged = self.fields.setdefault(kind, {})
            merged.update(mapping)
            for name in [n for n, v in merged.items() if not v]:
                del merged[name]  # "" switches a default field off
        self._token: _Token | None = None
        #: The org's API usage from the last ``Sforce-Limit-Info`` header: (calls used, daily limit).
        self.api_usage: tuple[int, int] | None = None
        self.token_requests = 0

    # --- auth ---

    def _private_key(self) -> str:
        if self.config.get("private_key"):
            return self.config["private_key"].replace("\\n", "\n")
        path = os.path.join(self.context.base_dir, os.path.expanduser(self.config["private_key_file"]))
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise ConfigError(f"[sinks.{self.context.instance}] private_key_file: cannot read {path}: "
                              f"{exc.strerror}") from None

    def _fetch_token(self) -> _Token:
        cfg = self.config
        if cfg["auth"] == "client_credentials":
            url = cfg["instance_url"].rstrip("/") + "/services/oauth2/token"
            data = {"grant_type": "client_credentials", "client_id": cfg["client_id"],
                    "client_secret": cfg["client_secret"]}
        else:
            audience = cfg["login_url"].rstrip("/")
            claims = {"iss": cfg["client_id"], "sub": cfg["username"], "aud": audience,
                      "exp": int(self.clock()) + 180}  # Salesforce accepts at most three minutes
            try:
                assertion = jwt.encode(claims, self._private_key(), algorithm="RS256")
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"[sinks.{self.context.instance}] private_key: not a usable RSA private key "
                                  f"in PEM format ({type(exc).__name__})") from None
            url = audience + "/services/oauth2/token"
            data = {"grant_type": JWT_GRANT, "assertion": assertion}
        self.token_requests += 1
        try:
            response = self.http.post(url, data=data, classify=False)
        except AuthError as exc:
            response = exc.response
        if response is None or response.status_code != 200:
            raise AuthError(self._explain_login(response), response=response)
        body = response.json()
        token = _Token(body["access_token"], (body.get("instance_url") or cfg["instance_url"]).rstrip("/"))
        self._remember_secret(token.access_token)
        log.info("%s: signed in to %s with the %s flow", self.context.instance, token.instance_url, cfg["auth"])
        return token

    def _explain_login(self, response: requests.Response | None) -> str:
        flow = "client-credentials" if self.config["auth"] == "client_credentials" else "JWT bearer"
        if response is None:
            return f"{self.context.instance}: the Salesforce {flow} login failed with no response"
        try:
            body = response.json()
            error, detail = body.get("error", ""), body.get("error_description", "")
        except ValueError:
            error, detail = "", response.text[:200]
        hints = {
            "invalid_client_id": "client_id is not the consumer key of a connected app in this org",
            "invalid_client": "client_secret does not match client_id (copy the consumer secret again)",
            "unsupported_grant_type": f"the connected app does not allow the {flow} flow: enable it in its OAuth "
                                      "settings",
            "invalid_grant": ("the connected app has no Run As user for the client-credentials flow, or that user "
                              "is inactive" if self.config["auth"] == "client_credentials" else
                              "the user has not been pre-authorised for the connected app, the certificate "
                              "uploaded to the app does not match private_key, or username is wrong"),
        }
        hint = hints.get(error, "check the connected app's OAuth settings")
        return self.http.redact(f"{self.context.instance}: Salesforce refused the {flow} login "
                                f"({response.status_code} {error}: {detail}): {hint}")

    def _remember_secret(self, value: str) -> None:
        if value and value not in self.http.secrets:
            self.http.secrets = sorted({*self.http.secrets, value}, key=len, reverse=True)

    def _note_usage(self, response: requests.Response | None) -> None:
        """Read the org's API usage from the ``Sforce-Limit-Info`` header Salesforce sends on REST calls."""
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", "")) if response is not None else None
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))

    # --- calls ---

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One REST call with the cached token; a 401 fetches a new token once and repeats the call."""
        for attempt in (1, 2):
            if self._token is None:
                self._token = self._fetch_token()
            headers = {"Authorization": f"Bearer {self._token.access_token}"}
            try:
                response = self.http.request(method, self._token.instance_url + path, headers=headers,
                                             classify=False, **kwargs)
            except AuthError as exc:
                response = exc.response
                self._note_usage(response)
                if response is None:
                    raise
            except RetriableError as exc:
                self._note_usage(exc.response)
                raise
            else:
                self._note_usage(response)
                return response
            code, message = _first_error(response)
            if response.status_code == 401 and attempt == 1:
                log.info("%s: %s (%s); fetching a new token", self.context.instance, code or "401", message)
                self._token = None
                continue
            if code == "REQUEST_LIMIT_EXCEEDED":
                usage = f" ({self.api_usage[0]} of {self.api_usage[1]} used)" if self.api_usage else ""
                raise RetriableError(f"{self.context.instance}: the org's daily API limit is spent{usage}: {message}",
                                     retry_after=self.config["limit_backoff"], response=response)
            raise AuthError(self._explain_refusal(response.status_code, code, message), response=response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _explain_refusal(self, status: int, code: str, message: str) -> str:
        hints = {
            "INVALID_SESSION_ID": "a freshly issued token was refused too: check the connected app's session policies",
            "API_DISABLED_FOR_ORG": "this org's edition or the user's profile has no API access (API Enabled)",
            "INSUFFICIENT_ACCESS": "the integration user lacks a permission this call needs",
        }
        hint = hints.get(code, "check the integration user's profile and permission sets")
        return self.http.redact(f"{self.context.instance}: Salesforce refused the call ({status} {code}: {message}): "
                                f"{hint}")

    def _composite(self, subrequests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Send one Composite request; return each subrequest's result by reference id."""
        response = self._call("POST", f"/services/data/{self.version}/composite",
                              json={"allOrNone": False, "compositeRequest": subrequests})
        if response.status_code != 200:
            code, message = _first_error(response)
            if code in RETRY_CODES:
                raise RetriableError(f"{self.context.instance}: composite request: {code}: {message}",
                                     response=response)
            raise FatalError(self.http.redact(f"{self.context.instance}: composite request refused "
                                              f"({response.status_code} {code}: {message})"), response=response)
        return {item["referenceId"]: item for item in response.json()["compositeResponse"]}

    # --- contacts ---

    def _contact_key(self, record: Record) -> str | None:
        a, how = record.author, self.config["contact_value"]
        value = {"handle": a.handle, "at_handle": f"@{a.handle}" if a.handle else None, "author_id": a.id,
                 "social_id": social_identity(record), "profile_url": a.profile_url, "author_name": a.name}[how]
        return value or None

    def _match_contacts(self, records: Sequence[Record]) -> dict[str, str]:
        """Contact ids by lower-cased match value, from one batched SOQL query per send."""
        field = self.config["contact_field"]
        wanted = sorted({key for r in records if not r.author.contact_id
                         and self.objects.get(r.type) in self.config["contact_links"]
                         and (key := self._contact_key(r))})
        if not field or not wanted:
            return {}
        chunks = _quoted_chunks(wanted)
        found: dict[str, str] = {}
        for start in range(0, len(chunks), COMPOSITE_HEAVY):
            subrequests = []
            for number, chunk in enumerate(chunks[start:start + COMPOSITE_HEAVY]):
                soql = f"SELECT Id, {field} FROM Contact WHERE {field} IN ({','.join(chunk)})"
                subrequests.append({"method": "GET", "referenceId": f"contacts{start + number}",
                                    "url": f"/services/data/{self.version}/query?q={quote(soql)}"})
            for ref, item in self._composite(subrequests).items():
                body = item.get("body")
                if item.get("httpStatusCode") != 200:
                    code, message = _first_error_body(body)
                    log.error("%s: Contact lookup on %s failed (%s: %s); records go without a Contact link. "
                              "Check contact_field names a Contact field the user can read.",
                              self.context.instance, field, code, message)
                    return {}
                while True:
                    for row in body.get("records", []):
                        value = row.get(field)
                        if isinstance(value, str):
                            found.setdefault(value.lower(), row["Id"])
                    if body.get("done", True) or not body.get("nextRecordsUrl"):
                        break
                    body = self._call("GET", body["nextRecordsUrl"]).json()
        log.debug("%s: %d of %d authors matched a Contact", self.context.instance, len(found), len(wanted))
        return found

    # --- records ---

    def _payload(self, record: Record, kind: str, contacts: dict[str, str]) -> dict[str, Any]:
        extra = {"priority": lambda r: self.config["priority_map"].get(r.priority)}
        body: dict[str, Any] = {"attributes": {"type": kind}}
        for name, source in self.fields.get(kind, {}).items():
            value = value_of(record, source, extra)
            if isinstance(value, str) and name in FIELD_LIMITS:
                value = value[:FIELD_LIMITS[name]]
            body[name] = value
        body[self.config["external_id_field"]] = record.id
        link = self.config["contact_links"].get(kind)
        if link:
            key = self._contact_key(record)
            contact = record.author.contact_id or (contacts.get(key.lower()) if key else None)
            if contact:
                body[link] = contact
        body.update(self._parent_reference(record, kind))
        return body

    # --- incidents: a parent Case and the member Cases that name it ---

    def _object_for(self, record: Record) -> str | None:
        """The sObject a record becomes: an incident record is a (parent) Case."""
        return "Case" if record.type == INCIDENT_TYPE else self.objects.get(record.type)

    def _parent_reference(self, record: Record, kind: str) -> dict[str, Any]:
        """A member's Case names its incident's Case as ``Parent`` by external id reference."""
        if kind == "Case" and record.incident and record.type != INCIDENT_TYPE:
            return {"Parent": {self.config["external_id_field"]: record.incident}}
        return {}

    @staticmethod
    def _collections(by_kind: dict[str, list[Record]]) -> list[tuple[str, list[Record]]]:
        """Collections of up to 200 records per object, incident records first in collections of their own
        (a Composite request runs its subrequests in order, so each parent exists before its members)."""
        collections = [("Case", [r]) for group in by_kind.values() for r in group if r.type == INCIDENT_TYPE]
        for kind, group in by_kind.items():
            members = [r for r in group if r.type != INCIDENT_TYPE]
            for start in range(0, len(members), COLLECTION_SIZE):
                collections.append((kind, members[start:start + COLLECTION_SIZE]))
        return collections

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        out: list[Delivery] = self._send_followups([r for r in records if r.thread_object])
        by_kind: dict[str, list[Record]] = {}
        for record in (r for r in records if not r.thread_object):
            kind = self._object_for(record)
            if kind is None:
                out.append(Delivery.rejected(record.id, f"no Salesforce object is configured for {record.type!r} "
                                                        f"records (add {record.type} = \"Case\" to objects)"))
            else:
                by_kind.setdefault(kind, []).append(record)
        if not by_kind:
            return out
        contacts = self._match_contacts([r for group in by_kind.values() for r in group])
        collections = self._collections(by_kind)
        ext = self.config["external_id_field"]
        for start in range(0, len(collections), COMPOSITE_HEAVY):
            batch = {f"{kind}{start + n}": (kind, chunk)
                     for n, (kind, chunk) in enumerate(collections[start:start + COMPOSITE_HEAVY])}
            subrequests = [{"method": "PATCH", "referenceId": ref,
                            "url": f"/services/data/{self.version}/composite/sobjects/{kind}/{ext}",
                            "body": {"allOrNone": False,
                                     "records": [self._payload(r, kind, contacts) for r in chunk]}}
                           for ref, (kind, chunk) in batch.items()]
            results = self._composite(subrequests)
            for ref, (kind, chunk) in batch.items():
                out.extend(self._outcomes(kind, chunk, results.get(ref)))
        if self.api_usage:
            used, limit = self.api_usage
            log.info("%s: Salesforce API usage %d of %d calls today", self.context.instance, used, limit)
        return out

    def _outcomes(self, kind: str, chunk: list[Record], item: dict[str, Any] | None) -> list[Delivery]:
        if item is None:
            return [Delivery.retry(r.id, "Salesforce returned no result for this collection") for r in chunk]
        body = item.get("body")
        if item.get("httpStatusCode") != 200 or not isinstance(body, list) or len(body) != len(chunk):
            code, message = _first_error_body(body)
            return [_failed(r.id, kind, code, message) for r in chunk]
        out = []
        for record, result in zip(chunk, body):
            if result.get("success"):
                out.append(Delivery.delivered(record.id, external_id=result.get("id")))
            else:
                errors = result.get("errors") or [{}]
                code = errors[0].get("statusCode") or errors[0].get("errorCode") or "UNKNOWN"
                message = "; ".join(e.get("message", "") for e in errors)
                fields_named = sorted({f for e in errors for f in e.get("fields", [])})
                if fields_named:
                    message += f" (fields: {', '.join(fields_named)})"
                out.append(_failed(record.id, kind, code, message))
        return out

    # --- follow-ups ---

    def _followup_kind(self, record: Record) -> str:
        """CaseComment on a Case when so configured; a FeedItem otherwise (Leads take no CaseComments)."""
        if self.config["followup_object"] == "CaseComment" and record.thread_object.startswith(CASE_PREFIX):
            return "CaseComment"
        return "FeedItem"

    def _followup_payload(self, record: Record, kind: str) -> dict[str, Any]:
        field, limit = FOLLOWUP_BODY[kind]
        public = record.by_brand or self.config["followup_public"]
        body: dict[str, Any] = {"attributes": {"type": kind}, "ParentId": record.thread_object,
                                field: _marked_body(record, limit)}
        if kind == "CaseComment":
            body["IsPublished"] = public
        else:
            body.update(Type="TextPost", Visibility="AllUsers" if public else "InternalUsers")
        return body

    def _comments_made(self, groups: dict[str, list[Record]]) -> dict[str, str]:
        """Comment ids by record id for follow-ups whose marker is already on their Case (or Lead)."""
        queries = []
        for kind, group in groups.items():
            field = FOLLOWUP_BODY[kind][0]
            for chunk in _quoted_chunks(sorted({r.thread_object for r in group})):
                marker = "" if kind == "FeedItem" else f" AND {field} LIKE '%socialcrm record %'"  # Body: no filter
                queries.append(f"SELECT Id, ParentId, {field} FROM {kind} WHERE ParentId IN ({','.join(chunk)})"
                               f"{marker}")
        found: dict[str, str] = {}
        for start in range(0, len(queries), COMPOSITE_HEAVY):
            subrequests = [{"method": "GET", "referenceId": f"comments{start + n}",
                            "url": f"/services/data/{self.version}/query?q={quote(soql)}"}
                           for n, soql in enumerate(queries[start:start + COMPOSITE_HEAVY])]
            for item in self._composite(subrequests).values():
                body = item.get("body")
                if item.get("httpStatusCode") != 200:
                    code, message = _first_error_body(body)
                    raise RetriableError(f"{self.context.instance}: could not read the comments already on the "
                                         f"conversations' objects ({code}: {message}); the follow-ups wait")
                while True:
                    for row in body.get("records", []):
                        text = row.get("CommentBody") or row.get("Body") or ""
                        match = _MARKER.search(text)
                        if match:
                            found.setdefault(match.group(1), row["Id"])
                    if body.get("done", True) or not body.get("nextRecordsUrl"):
                        break
                    body = self._call("GET", body["nextRecordsUrl"]).json()
        return found

    def _send_followups(self, records: list[Record]) -> list[Delivery]:
        """Add each follow-up to its conversation's object as a comment, once (see the module docstring)."""
        if not records:
            return []
        groups: dict[str, list[Record]] = {}
        for record in records:
            groups.setdefault(self._followup_kind(record), []).append(record)
        made = self._comments_made(groups)
        out = [Delivery.delivered(r.id, external_id=made[r.id]) for r in records if r.id in made]
        collections = [(kind, chunk) for kind, group in groups.items()
                       for chunk in _batches([r for r in group if r.id not in made], COLLECTION_SIZE)]
        for start in range(0, len(collections), COMPOSITE_HEAVY):
            batch = {f"{kind}{start + n}": (kind, chunk)
                     for n, (kind, chunk) in enumerate(collections[start:start + COMPOSITE_HEAVY])}
            results = self._composite([
                {"method": "POST", "referenceId": ref, "url": f"/services/data/{self.version}/composite/sobjects",
                 "body": {"allOrNone": False, "records": [self._followup_payload(r, kind) for r in chunk]}}
                for ref, (kind, chunk) in batch.items()])
            for ref, (kind, chunk) in batch.items():
                out.extend(self._outcomes(kind, chunk, results.get(ref)))
        return out

    # --- check ---

    def check(self) -> str:
        """Sign in, then one Composite call: the org's limits and a describe of every object written to."""
        kinds = sorted(set(self.objects.values()))
        if self.config["contact_field"]:
            kinds.append("Contact")
        subrequests = [{"method": "GET", "referenceId": "limits", "url": f"/services/data/{self.version}/limits"}]
        subrequests += [{"method": "GET", "referenceId": f"describe{kind}",
                         "url": f"/services/data/{self.version}/sobjects/{kind}/describe"} for kind in kinds]
        results = self._composite(subrequests)
        problems = []
        for kind in kinds:
            item = results.get(f"describe{kind}", {})
            if item.get("httpStatusCode") != 200:
                code, message = _first_error_body(item.get("body"))
                problems.append(f"the integration user cannot see {kind} ({code}: {message}): give its permission "
                                f"set Read, Create and Edit on {kind}")
                continue
            problems.extend(self._describe_problems(kind, item["body"]))
        if problems:
            raise ConfigError([f"[sinks.{self.context.instance}] {p}" for p in problems])
        daily = (results.get("limits", {}).get("body") or {}).get("DailyApiRequests", {})
        left = f"; {daily['Remaining']:,} of {daily['Max']:,} daily API requests left" if "Max" in daily else ""
        return (f"signed in to {self._token.instance_url} (API {self.version}); {', '.join(kinds)} ready for "
                f"upserts on {self.config['external_id_field']}{left}")

    def _describe_problems(self, kind: str, describe: dict[str, Any]) -> list[str]:
        by_name = {f["name"]: f for f in describe.get("fields", [])}
        if kind == "Contact":
            field = by_name.get(self.config["contact_field"])
            return [] if field else [f"Contact has no field {self.config['contact_field']} (contact_field)"]
        problems = []
        ext = by_name.get(self.config["external_id_field"])
        if ext is None:
            problems.append(f"{kind} has no field {self.config['external_id_field']}: create it as Text(255), "
                            "External ID, Unique (or set external_id_field)")
        elif not ext.get("externalId"):
            problems.append(f"{kind}.{ext['name']} is not marked External ID, so it cannot key an upsert")
        if not (describe.get("createable") and describe.get("updateable")):
            problems.append(f"the integration user cannot create and edit {kind} records")
        wanted = list(self.fields.get(kind, {}))
        if self.config["contact_links"].get(kind):
            wanted.append(self.config["contact_links"][kind])
        for name in wanted:
            field = by_name.get(name)
            if field is None:
                problems.append(f"{kind} has no field {name} (fields.{kind}.{name}; map it to \"\" to leave it out)")
            elif not (field.get("createable") and field.get("updateable")):
                problems.append(f"the integration user cannot write {kind}.{name} (field-level security)")
        return problems


def _failed(record_id: str, kind: str, code: str, message: str) -> Delivery:
    text = f"Salesforce {kind}: {code}: {message}".rstrip(": ")
    if code in RETRY_CODES:
        return Delivery.retry(record_id, text)
    return Delivery.rejected(record_id, text)


def _first_error(response: requests.Response) -> tuple[str, str]:
    try:
        return _first_error_body(response.json())
    except ValueError:
        return "", (response.text or "")[:200]


def _first_error_body(body: Any) -> tuple[str, str]:
    """Salesforce's REST errors are a list of ``{"errorCode", "message"}``."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode") or body[0].get("statusCode") or "", body[0].get("message", "")
    if isinstance(body, dict):
        return body.get("errorCode") or body.get("error", ""), body.get("message") or body.get("error_description", "")
    return "", ""


def _marked_body(record: Record, limit: int) -> str:
    """The comment text: the record's description, cut to ``limit`` bytes but always ending in its marker."""
    text = description(record)
    if len(text.encode()) <= limit:
        return text
    marker = f"\n...\nsocialcrm record {record.id}"
    room = limit - len(marker.encode())
    return text.encode()[:room].decode(errors="ignore") + marker


def _batches(items: list, size: int) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _quoted_chunks(values: Sequence[str]) -> list[list[str]]:
    """SOQL-quoted ``values`` in lists that keep each ``IN (...)`` inside ``QUERY_CHARS``."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for value in values:
        quoted = _soql_quote(value)
        if current and size + len(quoted) > QUERY_CHARS:
            chunks.append(current)
            current, size = [], 0
        current.append(quoted)
        size += len(quoted) + 1
    if current:
        chunks.append(current)
    return chunks


def _soql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@hookimpl
def register_sinks(register):
    register(SalesforceSink)


__all__ = ["RETRY_CODES", "SalesforceSink", "SalesforceSinkConfig"]
