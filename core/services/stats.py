"""The sentiment map and conversation drivers of a time range, from the store (the API's ``/stats``).

Counts of records by type, sentiment and network per hour or day (every bucket of the range present,
zero or not), and the terms and hashtags most records used. Terms are counted once per record, over
at most ``TERM_SAMPLE`` of the range's most recent records, without common words or the brand's own
names, which would top every list.
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from socialcrm.core.sdk.brand import Brand
from socialcrm.core.store import Store

TERM_SAMPLE = 5000
MAX_BUCKETS = {"hour": 24 * 31, "day": 3660}
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=7)}

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@[\w.]+")
_HASHTAG = re.compile(r"#(\w[\w-]*)")
_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]")
STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being below between
both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few for from
further get gets got had hadn't has hasn't have haven't having he her here hers herself him himself his how i i'm
if in into is isn't it it's its itself just let's like me more most much my myself no nor not now of off on once
only or other our ours ourselves out over own same she should shouldn't so some such than that that's the their
theirs them themselves then there there's these they they're this those through to too under until up very was
wasn't we we're were weren't what what's when where which while who whom why will with won't would wouldn't you
you're your yours yourself yourselves also any anyone really still even one two new via amp rt im ive dont cant
""".split())


def _start_of(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def brand_words(names: Iterable[str]) -> set[str]:
    """The brand's names, handles and keywords as single lower-case words."""
    words: set[str] = set()
    for name in names:
        words.update(w.lower() for w in _WORD.findall(name.lstrip("@#")))
        words.add(name.lstrip("@#").lower())
    return words


def top_terms(texts: Iterable[str], skip: set[str], top: int) -> tuple[list[dict], list[dict]]:
    """The ``top`` words and hashtags, each counted once per text."""
    words: Counter = Counter()
    tags: Counter = Counter()
    for text in texts:
        text = _HANDLE.sub(" ", _URL.sub(" ", text))
        tags.update({t.lower() for t in _HASHTAG.findall(text)})
        bare = _HASHTAG.sub(" ", text)
        words.update({w for w in (m.lower().replace("’", "'") for m in _WORD.findall(bare))
                      if len(w) >= 3 and w not in STOPWORDS and w not in skip})
    order = lambda item: (-item[1], item[0])  # noqa: E731 - ties by name, so the answer is stable
    return ([{"term": w, "count": n} for w, n in sorted(words.items(), key=order)[:top]],
            [{"term": f"#{t}", "count": n} for t, n in sorted(tags.items(), key=order)[:top]])



class RangeRefused(ValueError):
    """The asked-for time range cannot be answered: ``field`` names the parameter to change, ``detail``
    says in a few words what is wrong with it."""

    def __init__(self, field: str, detail: str, message: str):
        self.field, self.detail = field, detail
        super().__init__(message)


def record_stats(store: Store, brand: Brand, bucket: str, top: int, now: float, since: datetime | None = None,
                 until: datetime | None = None) -> dict[str, Any]:
    """Counts per ``bucket`` (``hour`` or ``day``) from ``since`` to ``until`` (by default the last day of
    hours or week of days up to ``now``) and the ``top`` terms and hashtags. ``RangeRefused`` when since is
    not before until or the range holds more than ``MAX_BUCKETS`` buckets."""
    until = until or datetime.fromtimestamp(now, timezone.utc)
    since = since or until - DEFAULT_SPAN[bucket]
    if since >= until:
        raise RangeRefused("since", "must be before until", "since: must be before until")
    first = _start_of(since, bucket)
    buckets = int((until - first) / STEP[bucket]) + 1
    if buckets > MAX_BUCKETS[bucket]:
        raise RangeRefused("since", f"at most {MAX_BUCKETS[bucket]} {bucket}s",
                           f"since: the range spans {buckets} {bucket}s; at most {MAX_BUCKETS[bucket]} "
                           f"(use bucket=day for long ranges)")
    series: dict[str, dict[str, Any]] = {}
    moment = first
    while moment < until:
        series[_iso(moment)] = {"start": _iso(moment), "total": 0, "type": {}, "sentiment": {}, "network": {}}
        moment += STEP[bucket]
    totals: dict[str, Any] = {"total": 0, "type": Counter(), "sentiment": Counter(), "network": Counter()}
    for dimension, rows in store.record_counts(since, until, bucket).items():
        for start, value, count in rows:
            entry = series.setdefault(start, {"start": start, "total": 0, "type": {}, "sentiment": {}, "network": {}})
            entry[dimension][value] = entry[dimension].get(value, 0) + count
            totals[dimension][value] += count
            if dimension == "type":
                entry["total"] += count
                totals["total"] += count
    texts = store.record_contents(since, until, TERM_SAMPLE)
    terms, hashtags = top_terms(texts, brand_words([brand.name, *brand.handles, *brand.keywords]), top)
    return {"since": since, "until": until, "bucket": bucket, "series": [series[k] for k in sorted(series)],
            "totals": {k: dict(v) if isinstance(v, Counter) else v for k, v in totals.items()},
            "top_terms": terms, "top_hashtags": hashtags, "sample_size": len(texts)}


__all__ = ["MAX_BUCKETS", "RangeRefused", "TERM_SAMPLE", "brand_words", "record_stats", "top_terms"]
