"""Priority P1-P4 and the action needed, from ordered rules, as social care teams triage.

Rules 1-5 are read top to bottom and the first that applies decides, in the order Symantec's social
team used: spam, fraud, news, support mentions, engageable raves. Rules 6 and 7 then may raise what
they decided, in that order: a complaint from a high-reach author rises a level (6), and a customer's
follow-ups in a conversation the brand has not answered raise it with their count (7). Every raise
is said in the reason.
"""
from __future__ import annotations

from socialcrm.core.sdk.model import PRIORITIES, Record

#: Unanswered follow-ups (this one included) from which rule 7 asks for at least a priority.
FOLLOWUP_FLOORS = ((3, "P2"), (2, "P3"))
_ORDINALS = {1: "1st", 2: "2nd", 3: "3rd"}


def prioritise(record: Record, high_influence: int, high_reach: int = 10_000,
               unanswered_followups: int = 0) -> tuple[str, str, str]:
    """Return (priority, action, reason) for a record whose type, sentiment, influence and mode are set.

    ``high_reach`` is the follower count from which a complaint's author is high-reach (rule 6);
    ``unanswered_followups`` how many of the customer's posts in the record's conversation, this one
    included, the brand has not answered since it last replied (rule 7; 0 when the record opens it).
    """
    priority, action, reason = _first_rule(record, high_influence)
    for raise_ in (_reach, _followups):
        raised = raise_(record, priority, high_reach, unanswered_followups)
        if raised:
            priority, why = raised
            action = "answer" if action == "none" else action
            reason = f"{reason}; raised to {priority} by {why}"
    return priority, action, reason


def _first_rule(record: Record, high_influence: int) -> tuple[str, str, str]:
    """Rules 1-5: the first that applies decides."""
    influential = record.influence.score >= high_influence
    kind = record.type
    if kind == "spam":
        return "P4", "none", "priority P4 by rule 1 (spam): filtered, no action"
    if record.fraud:
        return "P1", "escalate", "priority P1 by rule 2 (fraud): possible fraud or account compromise, escalate"
    if kind == "news":
        return "P4", "none", "priority P4 by rule 3 (news): press and headlines are logged, not answered"
    if kind == "case":
        if influential:
            return "P1", "open_case", (f"priority P1 by rule 4 (support mention): a case from a "
                                       f"high-influence author (influence >= {high_influence})")
        return "P2", "open_case", "priority P2 by rule 4 (support mention): a customer needs help"
    if kind == "rant":
        if influential:
            return "P1", "escalate", (f"priority P1 by rule 4 (support mention): a rant from a high-influence "
                                      f"author (influence >= {high_influence}) is a brand risk")
        return "P3", "answer", "priority P3 by rule 4 (support mention): a complaint to acknowledge"
    if kind == "query":
        if influential or record.mode == "reactive":
            return "P2", "answer", "priority P2 by rule 4 (support mention): a question addressed to the brand"
        return "P3", "answer", "priority P3 by rule 4 (support mention): a question to answer"
    if kind == "lead":
        return "P2", "create_lead", "priority P2 by rule 5 (engageable): near-term purchase intent"
    if kind == "rfe":
        return "P3", "log_request", "priority P3 by rule 5 (engageable): a feature request to log"
    if kind == "rave":
        if record.mode == "progressive":
            return "P4", "none", "priority P4 by rule 5 (engageable raves): praise not about the brand"
        if influential:
            return "P2", "thank", (f"priority P2 by rule 5 (engageable raves): an advocate with influence "
                                   f">= {high_influence}")
        return "P3", "thank", "priority P3 by rule 5 (engageable raves): thank the advocate"
    return "P4", "none", "priority P4: no rule asks for action"


def _reach(record: Record, priority: str, high_reach: int, _followups: int) -> tuple[str, str] | None:
    """Rule 6: a complaint (a rant, or a case said in anger) from a high-reach author rises a level."""
    complaint = record.type == "rant" or (record.type == "case" and record.sentiment.label == "negative")
    followers = record.author.followers or 0
    if not complaint or record.fraud or followers < high_reach or priority == "P1":
        return None
    higher = PRIORITIES[PRIORITIES.index(priority) - 1]
    return higher, (f"rule 6 (reach): a complaint from an author with {followers:,} followers "
                    f"(high_reach {high_reach:,}) rises a level")


def _followups(record: Record, priority: str, _high_reach: int, followups: int) -> tuple[str, str] | None:
    """Rule 7: the customer's unanswered follow-ups in one conversation ask for at least P3 (the 2nd)
    and at least P2 (the 3rd and after). Spam and news never rise."""
    if record.type in ("spam", "news"):
        return None
    floor = next((level for count, level in FOLLOWUP_FLOORS if followups >= count), None)
    if floor is None or PRIORITIES.index(priority) <= PRIORITIES.index(floor):
        return None
    nth = _ORDINALS.get(followups, f"{followups}th")
    return floor, (f"rule 7 (follow-ups): the {nth} unanswered follow-up in conversation {record.conversation} "
                   f"asks for at least {floor}")
