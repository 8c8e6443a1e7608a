"""jira sink: Jira Cloud issues, created in bulk (up to 50 a call) through the platform REST API v3.

    [sinks.product_ideas]
    plugin = "jira"
    base_url = "https://your-domain.atlassian.net"
    email = "${JIRA_EMAIL}"
    api_token = "${JIRA_API_TOKEN}"
    project_key = "WAVE"
    issue_type = "Task"                 # the issue type's name in that project
    labels = ["socialcrm"]
    # priority_map = { P1 = "Highest", P2 = "High", P3 = "Medium", P4 = "Low" }

Routes decide which records come here (typically ``rfe``); the sink just creates issues. Each issue
carries the label ``socialcrm-<sha256(record id)[:24]>``; before creating, the sink searches for
those labels and takes issues it finds as already delivered, so a re-send never opens a second
issue. Jira's search may lag a write by a few seconds; the sink also remembers what it created
within the process, which covers a retry inside that window.

A follow-up (``Record.thread_object`` names the conversation's issue) becomes a comment on that issue
(``POST /rest/api/3/issue/{key}/comment``; Jira has no bulk comment endpoint). The comment ends with the
line ``socialcrm record <id>`` and carries the entity property ``socialcrm`` = ``{"record_id": id}``; before
posting, the sink reads the issue's comments (one call a page of 100 per issue) and takes a comment with
that line as already there, so a re-sent follow-up adds no second comment.

An incident record (``type = "incident"``) is created first; each member record (``record.incident``
set) is created linked to the incident's issue (``update.issuelinks``, link type ``incident_link_type``).
A member whose incident has no issue yet waits for it.
"""
from __future__ import annotations

import re
from typing import Any, Sequence
from urllib.parse import urlsplit

import requests
from marshmallow import ValidationError, fields, validate, validates_schema
from requests.auth import HTTPBasicAuth

from socialcrm import (
    AuthError, Delivery, FatalError, hookimpl, INCIDENT_TYPE, PRIORITIES, RateLimitHeaders, Record, ResponseAction, Sink,
    StrictSchema)

from . import _render as render

BULK_MAX = 50  # POST /rest/api/3/issue/bulk: "Creates upto 50 issues"
SEARCH_PAGE = 100
LABEL_PREFIX = "socialcrm-"
COMMENT_PAGE = 100
COMMENT_PROPERTY = "socialcrm"
_MARKER = re.compile(r"socialcrm record (\S+)")
#: Jira Cloud sends X-RateLimit-Remaining and X-RateLimit-Reset (an ISO 8601 time) besides Retry-After.
JIRA_STYLE = RateLimitHeaders("x-ratelimit-remaining", "x-ratelimit-reset", "iso")


def record_label(record_id: str) -> str:
    """The label that marks the issue made for a record: ``socialcrm-`` + 24 hex digits."""
    return LABEL_PREFIX + render.record_hash(record_id, 24)


class JiraSinkConfig(StrictSchema):
    """Site, credentials (an Atlassian account email and API token), project and issue type."""

    base_url = fields.Url(required=True, schemes={"https", "http"})
    # error_messages go through str.format(): "${{VAR}}" reads "${VAR}".
    email = fields.String(required=True, error_messages={
        "required": 'missing: set email = "${{JIRA_EMAIL}}" (the Atlassian account the API token belongs to)'})
    api_token = fields.String(required=True, error_messages={
        "required": 'missing: set api_token = "${{JIRA_API_TOKEN}}" and export JIRA_API_TOKEN '
                    "(an API token from id.atlassian.com)"})
    project_key = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Z][A-Z0-9_]+$", error="a project key is upper case, like WAVE"))
    issue_type = fields.String(load_default="Task", validate=validate.Length(min=1))
    labels = fields.List(fields.String(validate=validate.Regexp(r"^\S+$", error="labels cannot contain spaces")),
                         load_default=lambda: ["socialcrm"])
    priority_map = fields.Dict(keys=fields.String(validate=validate.OneOf(PRIORITIES)), values=fields.String(),
                               load_default=dict)
    timeout = fields.Float(load_default=30.0, validate=validate.Range(min=1))
    #: The issue link type that ties a member's issue to its incident's issue (a name the site defines).
    incident_link_type = fields.String(load_default="Relates", validate=validate.Length(min=1))

    @validates_schema
    def _token_given(self, data, **_):
        if not data.get("api_token", "x").strip():
            raise ValidationError("empty: export JIRA_API_TOKEN", field_name="api_token")


class JiraSink(Sink):
    """Opens a Jira issue per record (feature requests, typically), in bulk, never twice for one record."""

    name = "jira"
    ConfigSchema = JiraSinkConfig
    secret_fields = ("api_token",)
    max_batch = BULK_MAX

    def __init__(self, config, context):
        super().__init__(config, context)
        self.base = config["base_url"].rstrip("/")
        secrets = set(context.secrets) | {config["api_token"]}
        self.http = context.http(timeout=config["timeout"], rate_limit=JIRA_STYLE, secrets=secrets)
        self.http.session.auth = HTTPBasicAuth(config["email"], config["api_token"])
        self._created: dict[str, str] = {}  # record id -> issue key, for a retry before search sees the issue

    def interpret_response(self, response: requests.Response) -> ResponseAction | None:
        """A search Jira refuses (a missing project answers 400) or a bulk endpoint that is not there means
        the config is wrong: an auth failure that pauses the sink, not a record to dead-letter."""
        path, status = urlsplit(response.url or "").path, response.status_code
        if path.endswith("/rest/api/3/search/jql") and 400 <= status < 500 and status not in (401, 403, 429):
            return ResponseAction.AUTH.because(f"Jira cannot search project {self.config['project_key']}: check "
                                               "project_key, and that the account has Browse projects there")
        if path.endswith("/rest/api/3/issue/bulk") and status == 404:
            return ResponseAction.AUTH.because(f"no Jira bulk-create endpoint at {self.base}: check base_url")
        return None

    # --- the hook points: check and send ---

    def check(self) -> str:
        """``GET /rest/api/3/myself``: proves the email and token; says who Jira thinks we are."""
        try:
            me = self.http.get(f"{self.base}/rest/api/3/myself").json()
        except AuthError as exc:
            raise AuthError(f"Jira refused the email and API token ({exc}): check email and api_token "
                            f"(JIRA_API_TOKEN); an API token is made at id.atlassian.com and belongs to that "
                            f"email", response=exc.response) from None
        except FatalError as exc:
            raise FatalError(f"no Jira Cloud REST API at {self.base}: {exc}", response=exc.response) from None
        return (f"authenticated as {me.get('displayName')} ({me.get('emailAddress') or me.get('accountId')}); "
                f"issues go to project {self.config['project_key']} as {self.config['issue_type']} "
                f"(the account needs Browse projects and Create issues there)")

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        unique = list({r.id: r for r in records}.values())
        out = self._send_followups([r for r in unique if r.thread_object])
        unique = [r for r in unique if not r.thread_object]
        parents = [r for r in unique if r.type == INCIDENT_TYPE]
        out += self._send_issues(parents) if parents else []
        waiting, rest = self._wait_for_incidents([r for r in unique if r.type != INCIDENT_TYPE])
        return out + waiting + (self._send_issues(rest) if rest else [])

    def _send_issues(self, unique: list[Record]) -> list[Delivery]:
        found = self._search([record_label(r.id) for r in unique if r.id not in self._created])
        out, todo = [], []
        for record in unique:
            key = self._created.get(record.id) or found.get(record_label(record.id))
            if key:
                out.append(Delivery.delivered(record.id, key))
            else:
                todo.append(record)
        for start in range(0, len(todo), BULK_MAX):
            out.extend(self._create(todo[start:start + BULK_MAX]))
        return out

    # --- search: which records already have an issue ---

    def _search(self, labels: list[str]) -> dict[str, str]:
        """Label -> issue key for every issue of the project that carries one of ``labels``."""
        if not labels:
            return {}
        wanted = set(labels)
        jql = (f'project = "{self.config["project_key"]}" AND labels in ('
               + ", ".join(f'"{label}"' for label in labels) + ")")
        body: dict[str, Any] = {"jql": jql, "fields": ["labels"], "maxResults": SEARCH_PAGE}
        found: dict[str, str] = {}
        while True:
            page = self.http.post(f"{self.base}/rest/api/3/search/jql", json=body).json()  # see interpret_response
            for issue in page.get("issues", []):
                for label in (issue.get("fields") or {}).get("labels") or []:
                    if label in wanted:
                        found[label] = issue["key"]
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token or token == body.get("nextPageToken"):
                return found
            body["nextPageToken"] = token

    # --- follow-ups: a comment on the conversation's issue ---

    def _send_followups(self, records: list[Record]) -> list[Delivery]:
        by_issue: dict[str, list[Record]] = {}
        for record in records:
            by_issue.setdefault(record.thread_object, []).append(record)
        out: list[Delivery] = []
        for issue, group in by_issue.items():
            url = f"{self.base}/rest/api/3/issue/{issue}/comment"
            there = self._comments_made(url)
            if there is None:
                out.extend(Delivery.rejected(r.id, f"Jira issue {issue} is gone (404) or not visible to the account: "
                                                   "the follow-up has nothing to comment on") for r in group)
                continue
            for record in group:
                if record.id in there:
                    out.append(Delivery.delivered(record.id, there[record.id]))
                    continue
                response = self.http.post(url, classify=False, json=self.comment(record))
                if response.status_code == 201:
                    out.append(Delivery.delivered(record.id, str(response.json().get("id"))))
                else:
                    reason = self.http.redact(f"Jira refused the comment on {issue}: HTTP {response.status_code}: "
                                              f"{response.text[:300]}")
                    out.append(Delivery.rejected(record.id, reason))
        return out

    def _comments_made(self, url: str) -> dict[str, str] | None:
        """Comment ids by record id for the follow-ups already on an issue; ``None`` if the issue is gone."""
        found: dict[str, str] = {}
        start = 0
        while True:
            response = self.http.get(url, classify=False, params={"startAt": start, "maxResults": COMMENT_PAGE})
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise FatalError(self.http.redact(f"Jira: reading the comments at {url}: HTTP {response.status_code}"),
                                 response=response)
            page = response.json()
            comments = page.get("comments") or []
            for comment in comments:
                for prop in comment.get("properties") or []:
                    if prop.get("key") == COMMENT_PROPERTY and isinstance(prop.get("value"), dict):
                        found.setdefault(str(prop["value"].get("record_id")), str(comment.get("id")))
                for record_id in _MARKER.findall(_adf_text(comment.get("body"))):
                    found.setdefault(record_id, str(comment.get("id")))
            start += len(comments)
            if not comments or start >= int(page.get("total") or 0):
                return found

    def comment(self, record: Record) -> dict:
        """The comment for a follow-up: the record in ADF, its marker line, and the ``socialcrm`` property."""
        body = description(record)
        body["content"].append(_paragraph(_text(f"socialcrm record {record.id}")))
        return {"body": body, "properties": [{"key": COMMENT_PROPERTY, "value": {"record_id": record.id}}]}

    # --- bulk create ---

    def _create(self, records: list[Record]) -> list[Delivery]:
        response = self.http.post(f"{self.base}/rest/api/3/issue/bulk", classify=False,
                                  json={"issueUpdates": [self.issue_fields(r) for r in records]})
        if response.status_code not in (200, 201, 400):
            reason = self.http.redact(f"Jira bulk create: HTTP {response.status_code}: {response.text[:300]}")
            return [Delivery.rejected(r.id, reason) for r in records]
        try:
            data = response.json()
        except ValueError:
            return [Delivery.retry(r.id, f"Jira bulk create: HTTP {response.status_code}, answer not JSON")
                    for r in records]
        failed = {e["failedElementNumber"]: e for e in data.get("errors") or []
                  if isinstance(e.get("failedElementNumber"), int) and 0 <= e["failedElementNumber"] < len(records)}
        issues = data.get("issues") or []
        succeeded = [i for i in range(len(records)) if i not in failed]
        out = [self._element_error(records[i], error) for i, error in sorted(failed.items())]
        if len(issues) != len(succeeded):
            # Jira lists created issues in request order, skipping failed ones; if the counts disagree the
            # pairing is unsafe, so those records retry and the next attempt finds their issues by label.
            self.log.warning("Jira created %d issues for %d requests it did not refuse; the next attempt "
                             "matches them by label", len(issues), len(succeeded))
            return out + [Delivery.retry(records[i].id, "Jira's bulk answer could not be matched to the records")
                          for i in succeeded]
        for i, issue in zip(succeeded, issues):
            self._created[records[i].id] = issue["key"]
            out.append(Delivery.delivered(records[i].id, issue["key"]))
        return out

    def _element_error(self, record: Record, error: dict) -> Delivery:
        status = error.get("status") or 400
        details = error.get("elementErrors") or {}
        words = [f"{field}: {message}" for field, message in (details.get("errors") or {}).items()]
        words += details.get("errorMessages") or []
        reason = f"Jira refused the issue ({status}): " + ("; ".join(words) or "no detail given")
        if status == 429 or status >= 500:
            return Delivery.retry(record.id, reason)
        return Delivery.rejected(record.id, reason)

    # --- what an issue looks like ---

    def issue_fields(self, record: Record) -> dict:
        """The ``issueUpdates`` item for one record: project, type, summary, ADF description, labels."""
        fields_: dict[str, Any] = {
            "project": {"key": self.config["project_key"]},
            "issuetype": {"name": self.config["issue_type"]},
            "summary": render.one_line(f"{render.type_label(record)} from {render.handle(record)}: {record.content}",
                                       255),
            "description": description(record),
            "labels": [*self.config["labels"], record_label(record.id)],
        }
        priority = self.config["priority_map"].get(record.priority)
        if priority:
            fields_["priority"] = {"name": priority}
        return {"fields": fields_, **self._incident_link(record)}

    # --- incidents: the incident's issue, and member issues linked to it ---

    def _wait_for_incidents(self, records: list[Record]) -> tuple[list[Delivery], list[Record]]:
        """Find the issue of every member's incident (made by this process, or found by its label); the
        members whose incident has no issue yet wait. Returns their deliveries and the records to send."""
        unknown = sorted({r.incident for r in records if r.incident and r.incident not in self._created})
        found = self._search([record_label(i) for i in unknown])
        self._created.update((i, found[record_label(i)]) for i in unknown if record_label(i) in found)
        waiting = [r for r in records if r.incident and r.incident not in self._created]
        return ([Delivery.retry(r.id, f"waiting for the Jira issue of {r.incident}") for r in waiting],
                [r for r in records if r not in waiting])

    def _incident_link(self, record: Record) -> dict:
        """``update.issuelinks`` linking a member's issue to its incident's issue."""
        key = self._created.get(record.incident) if record.incident and record.type != INCIDENT_TYPE else None
        if not key:
            return {}
        link = {"type": {"name": self.config["incident_link_type"]}, "outwardIssue": {"key": key}}
        return {"update": {"issuelinks": [{"add": link}]}}


def _text(text: str, **mark: str) -> dict:
    node: dict[str, Any] = {"type": "text", "text": text}
    if mark.get("href"):
        node["marks"] = [{"type": "link", "attrs": {"href": mark["href"]}}]
    elif mark.get("strong"):
        node["marks"] = [{"type": "strong"}]
    return node


def _paragraph(*nodes: dict) -> dict:
    return {"type": "paragraph", "content": list(nodes)}


def _bullets(items: list[list[dict]]) -> dict:
    return {"type": "bulletList", "content": [{"type": "listItem", "content": [_paragraph(*nodes)]}
                                              for nodes in items]}


def _adf_text(node: Any) -> str:
    """The text of an ADF document, one line per text node."""
    if isinstance(node, dict):
        own = node.get("text") if node.get("type") == "text" else None
        return "\n".join(t for t in [own or "", *(_adf_text(c) for c in node.get("content") or [])] if t)
    if isinstance(node, str):
        return node
    return ""


def description(record: Record) -> dict:
    """The record in Atlassian Document Format: what was said, the facts, why, and the link."""
    said = [line for line in (record.content or "").splitlines() if line.strip()] or ["(no text)"]
    content: list[dict] = [{"type": "blockquote", "content": [_paragraph(_text(line)) for line in said]}]
    content.append(_bullets([[_text(f"{label}: ", strong="1"), _text(value)]
                             for label, value in render.facts(record)]))
    if record.reasons:
        content.append({"type": "heading", "attrs": {"level": 3}, "content": [_text("Why")]})
        content.append(_bullets([[_text(reason)] for reason in record.reasons if reason.strip()]))
    url = render.post_url(record)
    if url:
        content.append(_paragraph(_text(f"View the post on {record.network}", href=url)))
    return {"type": "doc", "version": 1, "content": content}


@hookimpl
def register_sinks(register):
    """Register the Jira sink."""
    register(JiraSink)
