"""Priority P1-P4 and the action needed, from ordered rules, as social care teams triage.

The rules are read top to bottom and the first that applies decides, in the order Symantec's social
team used: spam, fraud, news, support mentions, engageable raves.
"""
from __future__ import annotations

from socialcrm.core.sdk.model import Record


def prioritise(record: Record, high_influence: int) -> tuple[str, str, str]:
    """Return (priority, action, reason) for a record whose type, sentiment, influence and mode are set."""
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
