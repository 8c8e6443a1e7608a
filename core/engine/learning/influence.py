"""Influence 0-100 from reach (followers) and engagement (likes, reposts, replies, quotes)."""
from __future__ import annotations

import math

from socialcrm.core.sdk.model import Author, Engagement, Influence

TIERS = ((80, "top"), (60, "high"), (35, "medium"), (0, "low"))


def influence_of(author: Author, engagement: Engagement, reposts_seen: int = 0) -> tuple[Influence, str]:
    """The score, its tier and a sentence saying how it was reached.

    Reach gives up to 75 points on a log scale (10 followers ~ 13, 10k ~ 50, 1M ~ 75); engagement up to
    20 (reposts and quotes count double, since they carry the post to new audiences); a verified
    account 5 more.
    """
    followers = max(author.followers or 0, 0)
    reach = min(75.0, 12.5 * math.log10(followers + 1))
    engaged = (engagement.likes + engagement.replies + 2 * (engagement.reposts + engagement.quotes + reposts_seen))
    activity = min(20.0, 5.0 * math.log10(engaged + 1))
    score = int(round(min(100.0, reach + activity + (5 if author.verified else 0))))
    tier = next(name for floor, name in TIERS if score >= floor)
    why = f"influence {score} ({tier}): {followers:,} followers, {engaged:,} weighted engagements"
    if author.verified:
        why += ", verified"
    return Influence(score, tier), why
