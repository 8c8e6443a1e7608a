"""helpdesk sink: one Zendesk Support ticket per record, created idempotently on the record id.

Each record is one ``POST /api/v2/tickets`` carrying an ``Idempotency-Key`` header with the record
id: when the outbox re-sends a record whose first answer was lost, Zendesk replays the first
ticket instead of opening a second. The record id also goes in the ticket's ``external_id``, so
agents and reports can find the ticket from the record.

Outcomes: 201 is delivered (the ticket id is the external id); 429, 5xx and timeouts are retried
by the shared HTTP layer and, if they last, come back as retry-later with the wait Zendesk asked
for; 401/403 raise ``AuthError`` (the records are not at fault); any other 4xx is Zendesk
refusing this ticket as it is, so the record is rejected with Zendesk's reason.

    [sinks.care_desk]
    plugin = "helpdesk"
    subdomain = "brightwave"
    email = "socialcrm@brightwave.example"
    api_token = "${ZENDESK_API_TOKEN}"
"""
from __future__ import annotations

from typing import Any, Sequence

from marshmallow import fields, validate

from socialcrm import Delivery, hookimpl, RateLimitHeaders, Record, RetriableError, Sink, StrictSchema

#: Where the vendor says how much of its rate limit is left and when it resets.
ZENDESK_STYLE = RateLimitHeaders("ratelimit-remaining", "ratelimit-reset", "delta")


PRIORITY = {"P1": "urgent", "P2": "high", "P3": "normal", "P4": "low"}
TICKET_TYPE = {"case": "incident", "query": "question", "rfe": "task"}


class HelpdeskConfig(StrictSchema):
    """Zendesk ``subdomain``, the agent ``email`` and ``api_token`` the API acts as; optional
    ``group_id`` to assign tickets to and ``tags`` to add."""

    subdomain = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z0-9][a-z0-9-]*$", error="the part before .zendesk.com, e.g. \"brightwave\""))
    email = fields.Email(required=True)
    api_token = fields.String(required=True, validate=validate.Length(min=1))
    group_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    tags = fields.List(fields.String(validate=validate.Length(min=1)), load_default=lambda: ["socialcrm"])


class HelpdeskSink(Sink):
    """Opens a Zendesk Support ticket per record, idempotent on the record id."""

    name = "helpdesk"
    ConfigSchema = HelpdeskConfig
    secret_fields = ("api_token",)
    max_batch = 25  # one request per record: a batch is a unit of work, not one API call

    def __init__(self, config: dict[str, Any], context):
        super().__init__(config, context)
        self.api = f"https://{config['subdomain']}.zendesk.com/api/v2"
        self.auth = (f"{config['email']}/token", config["api_token"])
        # Zendesk says how much budget is left in ratelimit-remaining/-reset: read it every call.
        self.http = context.http(rate_limit=ZENDESK_STYLE)

    def check(self) -> str:
        user = self.http.get(f"{self.api}/users/me", auth=self.auth).json()["user"]
        return f"signed in to {self.config['subdomain']}.zendesk.com as {user['email']} ({user['role']})"

    def send(self, records: Sequence[Record]) -> list[Delivery]:
        out: list[Delivery] = []
        for index, record in enumerate(records):
            try:
                response = self.http.post(f"{self.api}/tickets", json={"ticket": self.ticket(record)},
                                          auth=self.auth, headers={"Idempotency-Key": record.id}, classify=False)
            except RetriableError as exc:
                # Zendesk is rate limiting or failing: this record and the rest wait, with its wait.
                out.extend(Delivery.retry(r.id, str(exc), exc.retry_after) for r in records[index:])
                break
            out.append(self._outcome(record, response))
        return out

    def ticket(self, record: Record) -> dict[str, Any]:
        """The ticket for a record. It must not change between sends of the same record: Zendesk
        refuses a reused idempotency key with a different body."""
        who = f"@{record.author.handle}" if record.author.handle else "someone"
        body = [record.content, "", f"{who} on {record.network}: {record.url or record.id}",
                f"Why socialcrm sent this: {'; '.join(record.reasons) or record.type}"]
        ticket: dict[str, Any] = {
            "subject": f"[{record.type}] {who} on {record.network}: {' '.join(record.content.split())[:80]}",
            "comment": {"body": "\n".join(body)},
            "external_id": record.id,
            "priority": PRIORITY.get(record.priority, "normal"),
            "tags": [*self.config["tags"], f"socialcrm_{record.type}", f"socialcrm_{record.network}"],
        }
        if record.type in TICKET_TYPE:
            ticket["type"] = TICKET_TYPE[record.type]
        if self.config["group_id"]:
            ticket["group_id"] = self.config["group_id"]
        return ticket

    def _outcome(self, record: Record, response) -> Delivery:
        if response.status_code in (200, 201):
            return Delivery.delivered(record.id, str(response.json()["ticket"]["id"]))
        if response.status_code == 409:
            # The first request with this key is still being processed: ask again later.
            return Delivery.retry(record.id, "Zendesk is still processing the first send of this record")
        return Delivery.rejected(record.id, f"Zendesk refused the ticket ({response.status_code}): {_reason(response)}")


def _reason(response) -> str:
    """Zendesk's own words: ``description`` and each ``details`` entry of its error body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    parts = [str(body.get("description") or body.get("error") or "")]
    for field_name, problems in (body.get("details") or {}).items():
        for problem in problems if isinstance(problems, list) else [problems]:
            text = problem.get("description") if isinstance(problem, dict) else problem
            parts.append(f"{field_name}: {text}")
    return "; ".join(p for p in parts if p)[:500]


@hookimpl
def register_sinks(register):
    """Add the helpdesk sink to socialcrm."""
    register(HelpdeskSink)
