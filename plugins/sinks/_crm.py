"""What a record looks like to a CRM: its subject line, its description, and named values for field mappings.

Shared by the Salesforce and Zendesk sinks (a helper module, not a plugin: it registers nothing). A field
mapping names a value from ``VALUES`` (``Subject = "subject"``) or gives a literal after ``=``
(``Origin = "=Social"``).
"""
from __future__ import annotations

from typing import Any, Callable

from socialcrm import isoformat, Record


LITERAL = "="


def display_name(record: Record) -> str:
    """The author's name, else their handle, else the network: never empty (CRM name fields are required)."""
    author = record.author
    return (author.name or (f"@{author.handle}" if author.handle else "") or f"{record.network} user").strip()


def subject(record: Record, limit: int = 255) -> str:
    """One line: type, who, where and the start of what they said."""
    who = f"@{record.author.handle}" if record.author.handle else display_name(record)
    text = " ".join(record.content.split())
    line = f"{record.type.capitalize()} from {who} on {record.network}: {text}"
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def description(record: Record) -> str:
    """The post, its link, who said it, what learning made of it and why: for the person who picks it up."""
    a, s, i = record.author, record.sentiment, record.influence
    lines = [record.content.strip(), ""]
    if record.url:
        lines.append(f"Link: {record.url}")
    who = display_name(record)
    details = [f"@{a.handle}" if a.handle else None, f"{a.followers} followers", "verified" if a.verified else None]
    lines.append(f"Author: {who} ({', '.join(d for d in details if d)})" + (f" {a.profile_url}" if a.profile_url else ""))
    lines.append(f"Type: {record.type} | Sentiment: {s.label} ({s.score:+.2f}) | Priority: {record.priority} | "
                 f"Influence: {i.score} ({i.tier}) | Mode: {record.mode} | Action: {record.action}")
    if record.reasons:
        lines.append("Why:")
        lines.extend(f"- {reason}" for reason in record.reasons)
    lines.append(f"socialcrm record {record.id}")
    return "\n".join(lines)


VALUES: dict[str, Callable[[Record], Any]] = {
    "record_id": lambda r: r.id,
    "subject": subject,
    "description": description,
    "content": lambda r: r.content,
    "url": lambda r: r.url,
    "network": lambda r: r.network,
    "source": lambda r: r.source,
    "lang": lambda r: r.lang,
    "created_at": lambda r: isoformat(r.created_at),
    "author_name": display_name,
    "handle": lambda r: r.author.handle,
    "author_id": lambda r: r.author.id,
    "profile_url": lambda r: r.author.profile_url,
    "followers": lambda r: r.author.followers,
    "type": lambda r: r.type,
    "action": lambda r: r.action,
    "sentiment": lambda r: r.sentiment.label,
    "sentiment_score": lambda r: r.sentiment.score,
    "influence": lambda r: r.influence.score,
    "influence_tier": lambda r: r.influence.tier,
    "priority_code": lambda r: r.priority,
    "mode": lambda r: r.mode,
    "team": lambda r: r.team,
    "reasons": lambda r: "; ".join(r.reasons),
}


def check_source(value: str, extra: tuple[str, ...] = ()) -> str | None:
    """``None`` if ``value`` is a known value name or a literal, else the error message to show."""
    if value.startswith(LITERAL) or value in VALUES or value in extra:
        return None
    return f"unknown value {value!r}: use one of {', '.join(sorted((*VALUES, *extra)))}, or a literal as \"=text\""


def value_of(record: Record, source: str, extra: dict[str, Callable[[Record], Any]] | None = None) -> Any:
    """The value a mapping names for ``record``."""
    if source.startswith(LITERAL):
        return source[len(LITERAL):]
    if extra and source in extra:
        return extra[source](record)
    return VALUES[source](record)


def social_identity(record: Record) -> str | None:
    """``network:author id`` (or ``network:@handle``): one person on one network, the key a CRM user is matched by."""
    author = record.author
    if author.id:
        return f"{record.network}:{author.id}"
    if author.handle:
        return f"{record.network}:@{author.handle.lower()}"
    return None
