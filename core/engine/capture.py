"""Capture: keep each mention once, fold reposts into their original, and set the brand's own posts apart.

This stage is a plain function over a batch, so it runs the same in-process and as a task.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.model import Mention

if TYPE_CHECKING:  # pragma: no cover
    from socialcrm.core.store import Transaction


@dataclass
class Captured:
    """What capture made of a page."""

    new: list[Mention] = field(default_factory=list)        # mentions to store (raw kept)
    to_learn: list[Mention] = field(default_factory=list)   # one per piece of content not seen before
    reposts: Counter = field(default_factory=Counter)       # record id -> reposts to add to its reach
    duplicates: int = 0                                      # mentions already stored, or twice in the page
    own_posts: int = 0                                       # posted by the brand's own accounts
    brand_posts: list[Mention] = field(default_factory=list)  # those posts: not learned, they answer conversations
    empty: int = 0                                           # nothing to read


def capture(mentions: Sequence[Mention], seen_mentions: set[str], seen_records: set[str],
            brand: Brand) -> Captured:
    """Sort a page into new mentions, content to learn from, repost counts and drops.

    A repost never makes a record of its own: it adds to the reach of its original's record. A repost
    whose original has not been seen yet carries the content once, under the original's id, so the
    original arriving later is recognised as the same content.
    """
    out = Captured()
    own_handles = {h.lstrip("@").lower() for h in brand.handles}
    in_page: set[str] = set()
    learned: set[str] = set()
    for mention in mentions:
        if mention.id in seen_mentions or mention.id in in_page:
            out.duplicates += 1
            continue
        in_page.add(mention.id)
        out.new.append(mention)
        if mention.author.handle and mention.author.handle.lstrip("@").lower() in own_handles:
            out.own_posts += 1
            out.brand_posts.append(mention)
            continue
        if not mention.text.strip():
            out.empty += 1
            continue
        key = mention.canonical_id
        if key in seen_records or key in learned:
            # A repost adds to its original's reach. So does an original arriving after a repost of it
            # already carried its content (its own id is new, its content is not): count that repost.
            out.reposts[key] += 1
            continue
        learned.add(key)
        out.to_learn.append(mention)
    return out


_NOT_WORDS = re.compile(r"https?://\S+|www\.\S+|[@#]\w+|\d+|[^\w\s]|_")


def fingerprint(text: str) -> str | None:
    """A fingerprint shared by near-identical posts: the words left once links, handles, hashtags,
    numbers, punctuation and emoji are taken out. None for posts too short to tell (under 5 words)."""
    words = _NOT_WORDS.sub(" ", text.lower()).split()
    if len(words) < 5:
        return None
    return hashlib.sha1(" ".join(words).encode("utf-8")).hexdigest()[:32]


def count_repeats(prints: Sequence[tuple[str | None, str]], known: dict[str, tuple[int, list[str]]]) -> list[int]:
    """For each (fingerprint, author) in order: how many near-identical posts by OTHER accounts came
    before it. ``known`` (fingerprint -> (posts, up to 20 authors)) is read and updated in place."""
    repeats = []
    for fp, author in prints:
        if not fp:
            repeats.append(0)
            continue
        posts, authors = known.get(fp, (0, []))
        repeats.append(sum(1 for a in authors if a != author))
        if author not in authors and len(authors) < 20:
            authors = [*authors, author]
        known[fp] = (posts + 1, authors)
    return repeats


def count_stored_repeats(tx: "Transaction", prints: Sequence[tuple[str | None, str]],
                         now: float | None = None) -> list[int]:
    """``count_repeats`` over the counts the store holds (earlier pages), which are then updated with
    this page's posts, inside the page's transaction ``tx``."""
    known = tx.fingerprints(fp for fp, _ in prints if fp)
    repeats = count_repeats(prints, known)
    tx.save_fingerprints(known, now=now)
    return repeats
