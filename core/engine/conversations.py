"""Following conversations: which customer posts of a page are follow-ups, which brand posts answer.

A conversation is keyed by its root post's id (``Mention.conversation_id``). A customer's first post
in it opens it; each later post by that customer is a follow-up, counted until the brand replies
(other people joining the thread are not the customer waiting). A brand post in the conversation
marks it answered (``first_response_at`` is set once, by the first reply); a post by the customer
after that re-opens it and counts again from one. This module decides; the store
reads and writes the states inside the page's transaction.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from socialcrm.core.engine.donotengage import author_key
from socialcrm.core.sdk.model import Mention, Record
from socialcrm.core.store import ConversationState

log = logging.getLogger(__name__)


@dataclass
class Followed:
    """What a page did to its conversations."""

    followups: list[int] = field(default_factory=list)  # per customer mention: its unanswered follow-ups (0: opens)
    changed: dict[str, ConversationState] = field(default_factory=dict)  # key -> state to store
    answers: list[tuple[Mention, ConversationState]] = field(default_factory=list)  # brand replies, each with its thread


def conversation_keys(customer: Iterable[Mention], brand: Iterable[Mention]) -> set[str]:
    """The conversation keys a page's posts may touch (to read their states from the store)."""
    keys = {m.conversation_id for m in customer}
    for mention in brand:
        keys.update(k for k in (mention.conversation, mention.reply_to) if k)
    return keys


def follow(customer: Sequence[Mention], brand: Sequence[Mention], known: dict[str, ConversationState],
           salt: str) -> Followed:
    """Walk a page's customer and brand posts in the order they were said and update ``known`` (the
    stored states of their conversations, as ``conversation_keys`` named them). ``salt`` keys authors
    as do-not-engage does (``[privacy] hash_salt``)."""
    out = Followed(followups=[0] * len(customer))
    events = sorted([(m.created_at, 0, i, m) for i, m in enumerate(customer)]
                    + [(m.created_at, 1, i, m) for i, m in enumerate(brand)], key=lambda e: (e[0], e[1], e[2]))
    for _, by_brand, position, mention in events:
        if by_brand:
            state = _brand_reply(mention, known)
            if state is not None:
                out.changed[state.key] = state
                out.answers.append((mention, state))
        else:
            state = _customer_post(mention, known, _customer_key(mention, salt))
            if state is not None:
                out.followups[position] = state.followups
                out.changed[state.key] = state
    return out


def _customer_key(mention: Mention, salt: str) -> str | None:
    who = mention.author.handle or mention.author.id
    return author_key(mention.network, who, salt) if who else None


def _customer_post(mention: Mention, known: dict[str, ConversationState],
                   customer: str | None) -> ConversationState | None:
    key = mention.conversation_id
    state = known.get(key)
    if state is None:
        state = known[key] = ConversationState(key=key, first_record_id=mention.canonical_id,
                                               opened_at=mention.created_at, customer_key=customer,
                                               last_customer_post_at=mention.created_at)
        return state
    if customer is None or customer != state.customer_key:
        return None  # someone else joining the thread: not the customer waiting for an answer
    if state.state == "open":
        state.followups += 1
    else:  # the brand had answered (or it was resolved): the customer re-opens it
        state.state, state.followups = "open", 1
    state.last_customer_post_at = max(state.last_customer_post_at, mention.created_at)
    return state


def _brand_reply(mention: Mention, known: dict[str, ConversationState]) -> ConversationState | None:
    state = next((known[k] for k in (mention.conversation, mention.reply_to) if k and k in known), None)
    if state is None:
        if mention.reply_to:
            log.debug("brand post %s answers %s, a conversation no customer has spoken in yet", mention.id,
                      mention.conversation or mention.reply_to)
        return None
    if state.first_response_at is None:
        state.first_response_at = mention.created_at
    state.state, state.followups = "answered", 0
    return state


def brand_reply_records(answers: Sequence[tuple[Mention, ConversationState]], routes: dict[str, list[str]],
                        sinks: set[str]) -> list[Record]:
    """The brand's replies as agent comments for their conversations' sinks: records marked
    ``by_brand``, routed where the conversation's first record went (``routes``: record id -> sinks)."""
    out = []
    for mention, state in answers:
        if not mention.text.strip():
            continue
        route = [s for s in routes.get(state.first_record_id, []) if s in sinks]
        # P4: a comment is claimed after the case it comments on, which is never lower.
        out.append(Record(
            id=mention.id, network=mention.network, content=mention.text, created_at=mention.created_at,
            author=mention.author, source=mention.source, url=mention.url, lang=mention.lang, type="other",
            action="none", priority="P4", mode="reactive", route=route, engagement=mention.engagement,
            conversation=state.key, parent=mention.reply_to, by_brand=True, confidence=1.0,
            reasons=[f"the brand's reply in conversation {state.key} (by @{mention.author.handle}): passed on to "
                     f"the conversation's sinks as an agent comment ([conversations] brand_replies = \"comment\")"
                     + ("" if route else "; the conversation's first record went to no sink")]))
    return out
