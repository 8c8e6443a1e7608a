"""What the message sinks (email, Slack, Jira, HubSpot) say about a record, in words people read.

Not a plugin: a helper the sinks share so a record reads the same in every inbox and channel.
"""
from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from socialcrm import Record

TYPE_LABELS = {
    "case": "Case", "query": "Query", "rant": "Rant", "rave": "Rave", "lead": "Lead",
    "rfe": "Feature request", "spam": "Spam", "news": "News", "other": "Other",
}
PRIORITY_ORDER = ("P1", "P2", "P3", "P4")


def record_hash(record_id: str, length: int = 32) -> str:
    """A stable, opaque digest of the record id: safe in labels, headers and URLs."""
    return hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:length]


def type_label(record: Record) -> str:
    """``rfe`` -> ``Feature request``; unknown types are shown as they are."""
    return TYPE_LABELS.get(record.type, record.type.capitalize())


def one_line(text: str | None, limit: int) -> str:
    """``text`` on one line, whitespace collapsed, cut at ``limit`` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[:max(limit - 1, 0)].rstrip() + "…"


def cut(text: str, limit: int) -> str:
    """``text`` cut at ``limit`` characters (line breaks kept), with an ellipsis when cut."""
    return text if len(text) <= limit else text[:max(limit - 1, 0)].rstrip() + "…"


def post_url(record: Record) -> str | None:
    """The link to the post, only when it is a plain http(s) URL (never ``javascript:`` and the like)."""
    return _http_url(record.url)


def profile_url(record: Record) -> str | None:
    """The author's profile link, only when it is a plain http(s) URL."""
    return _http_url(record.author.profile_url)


def _http_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def handle(record: Record) -> str:
    """``@handle``, else the display name, else ``someone``."""
    if record.author.handle:
        return "@" + record.author.handle.lstrip("@")
    return record.author.name or "someone"


def author_line(record: Record) -> str:
    """``@kim (Kim Lee) on x, 12,400 followers, verified``."""
    return handle(record) + author_details(record)


def author_details(record: Record) -> str:
    """What follows the handle in ``author_line``: `` (Kim Lee) on x, 12,400 followers, verified``."""
    a = record.author
    name = f" ({a.name})" if a.name and a.handle and a.name != a.handle else ""
    verified = ", verified" if a.verified else ""
    return f"{name} on {record.network}, {a.followers:,} followers{verified}"


def sentiment_line(record: Record) -> str:
    """``negative (-0.72)``."""
    return f"{record.sentiment.label} ({record.sentiment.score:+.2f})"


def influence_line(record: Record) -> str:
    """``82/100 (high)``."""
    return f"{record.influence.score}/100 ({record.influence.tier})"


def route_line(record: Record) -> str:
    """``desk, alerts (team care)``, or ``-`` when unrouted."""
    sinks = ", ".join(record.route) or "-"
    return f"{sinks} (team {record.team})" if record.team else sinks


def headline(record: Record, limit: int = 120) -> str:
    """``P1 Case from @kim: my box is dead again…``."""
    return one_line(f"{record.priority} {type_label(record)} from {handle(record)}: {record.content}", limit)


def facts(record: Record) -> list[tuple[str, str]]:
    """The record's fields as (label, value) pairs, in the order people scan them."""
    return [
        ("Type", type_label(record)),
        ("Priority", record.priority),
        ("Sentiment", sentiment_line(record)),
        ("Influence", influence_line(record)),
        ("Action", record.action.replace("_", " ")),
        ("Mode", record.mode),
        ("Author", author_line(record)),
        ("Said", record.created_at.strftime("%Y-%m-%d %H:%M UTC")),
        ("Route", route_line(record)),
        ("Record", record.id),
    ]


def by_priority(records: list[Record]) -> list[Record]:
    """Most urgent first, then most influential, then oldest."""
    rank = {p: i for i, p in enumerate(PRIORITY_ORDER)}
    return sorted(records, key=lambda r: (rank.get(r.priority, len(rank)), -r.influence.score, r.created_at))


#: What a record is to a system that takes events: a new object, or an update of the conversation's one.
RECORD_CREATED, CONVERSATION_UPDATED = "record.created", "conversation.updated"


def event(record: Record) -> dict[str, str | None]:
    """The conversation fields the event sinks (webhook, jsonl, console) add to a record: ``event``
    (``record.created`` or, for a follow-up, ``conversation.updated``), ``conversation`` (the thread's root
    record id) and ``thread_object`` (the conversation's object in this sink, for a follow-up)."""
    return {"event": CONVERSATION_UPDATED if record.thread_object else RECORD_CREATED,
            "conversation": record.conversation, "thread_object": record.thread_object}
