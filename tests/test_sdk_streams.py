"""The stream toolkit of the SDK: paginators, the paging loop, the watermark and sweep bookkeeping."""
import json

import pytest

from socialcrm import (LinkHeaderPaginator, Page, PageNumberPaginator, PaginationLoop, SeenIds, TokenPaginator,
                       Watermark, StreamCursor, chain_streams, end_backfill, end_sweep, new_sweep, paginate, sweep_saw)


class Api:
    """A fake API: ``pages[token]`` is what a request with ``token`` answers; requests are recorded."""

    def __init__(self, pages):
        self.pages, self.asked = pages, []

    def __call__(self, token):
        self.asked.append(token)
        return self.pages[token]


def collect(body, more):
    return Page([], {"items": body["items"], "more": more})


# --- paginators and the loop ---

def test_a_token_paginator_follows_next_tokens_until_there_is_none():
    api = Api({None: {"items": [1, 2], "next": "b"}, "b": {"items": [3], "next": "c"}, "c": {"items": [4]}})
    pages = list(paginate(api, TokenPaginator(lambda body: body.get("next")), collect))
    assert api.asked == [None, "b", "c"]
    assert [p.cursor for p in pages] == [{"items": [1, 2], "more": True}, {"items": [3], "more": True},
                                         {"items": [4], "more": False}]


def test_a_next_token_equal_to_the_one_asked_with_is_refused_as_a_loop():
    api = Api({None: {"items": [1], "next": "b"}, "b": {"items": [2], "next": "b"}})
    pages = paginate(api, TokenPaginator(lambda body: body.get("next")), collect)
    assert next(pages).cursor["items"] == [1]
    with pytest.raises(PaginationLoop, match="same next-page token.*'b'"):
        next(pages)
    assert api.asked == [None, "b"]  # the page was not asked for a third time


def test_a_resumed_paginator_starts_at_its_stored_token_and_max_pages_bounds_a_run():
    api = Api({"b": {"items": [3], "next": "c"}, "c": {"items": [4], "next": "d"}})
    pages = list(paginate(api, TokenPaginator(lambda body: body.get("next"), start="b"), collect, max_pages=2))
    assert api.asked == ["b", "c"]
    assert pages[-1].cursor["more"] is True  # stopped by max_pages, not by the API


def test_more_and_stop_end_a_stream_whatever_the_token_says():
    api = Api({None: {"items": [1], "next": "b"}, "b": {"items": [], "next": "c"}})
    paginator = TokenPaginator(lambda body: body["next"], more=lambda body: bool(body["items"]))
    assert [p.cursor["items"] for p in paginate(api, paginator, collect)] == [[1], []]
    assert api.asked == [None, "b"]

    stopping = TokenPaginator(lambda body: body["next"])

    def stop_at_once(body, more):
        stopping.stop()  # the source found its end itself (it reached its watermark)
        return collect(body, more)
    api = Api({None: {"items": [1], "next": "b"}})
    assert len(list(paginate(api, stopping, stop_at_once))) == 1 and api.asked == [None]


def test_a_page_function_may_yield_nothing_for_a_response():
    api = Api({None: {"items": [], "next": "b"}, "b": {"items": [5]}})
    pages = list(paginate(api, TokenPaginator(lambda body: body.get("next")),
                          lambda body, more: collect(body, more) if body["items"] else None))
    assert [p.cursor["items"] for p in pages] == [[5]]


def test_a_page_number_paginator_counts_from_its_base_and_resumes_mid_way():
    api = Api({0: {"items": [1], "pages": 3}, 1: {"items": [2], "pages": 3}, 2: {"items": [3], "pages": 3}})
    list(paginate(api, PageNumberPaginator(lambda body: body["pages"]), collect))
    assert api.asked == [0, 1, 2]
    api = Api({2: {"items": [3], "pages": 3}})
    list(paginate(api, PageNumberPaginator(lambda body: body["pages"], start=2), collect))
    assert api.asked == [2]
    api = Api({1: {"items": [1], "pages": 2}, 2: {"items": [2], "pages": 2}})
    list(paginate(api, PageNumberPaginator(lambda body: body["pages"], base=1), collect))
    assert api.asked == [1, 2]


class Linked:
    """A response with a ``Link`` header, as ``requests`` parses it."""

    def __init__(self, next_url=None):
        self.links = {"next": {"url": next_url, "rel": "next"}} if next_url else {}


def test_a_link_header_paginator_reads_the_parameter_of_the_rel_link():
    api = Api({None: Linked("https://x.example/api?max_id=9&limit=2"), "9": Linked()})
    list(paginate(api, LinkHeaderPaginator("next", "max_id"), lambda response, more: Page([], more)))
    assert api.asked == [None, "9"]


# --- the watermark and sweeps ---

def test_the_watermark_keeps_ties_it_has_not_seen_and_drops_those_it_has():
    mark = Watermark(100, ["a"])
    assert not mark.is_new(99, "z")
    assert not mark.is_new(100, "a")  # taken at the watermark last time
    assert mark.is_new(100, "b")  # same second, not seen: a tie that is new
    assert mark.is_new(101, "a")
    assert Watermark().is_new(0, "a")  # no watermark yet: everything is new


def test_raising_the_watermark_replaces_or_adds_to_the_ties():
    mark = Watermark(100, ["a"])
    mark.raise_to(100, ["c", "b"])
    assert (mark.value, mark.seen) == (100, ["a", "b", "c"])
    mark.raise_to(90, ["old"])
    assert (mark.value, mark.seen) == (100, ["a", "b", "c"])
    mark.raise_to(120, ["d"])
    assert (mark.value, mark.seen) == (120, ["d"])


def test_ids_seen_keep_the_latest_batch_whole_and_older_ids_up_to_the_bound():
    seen = SeenIds(["c", "b", "a"], limit=4)
    assert "b" in seen and "z" not in seen
    seen.take(["e", "d", "c"])  # the latest batch first, in its order; "c" moves up, not twice
    assert seen.ids == ["e", "d", "c", "b"]  # the bound drops the oldest ("a")
    seen.take(["v", "w", "x", "y", "z"])  # a batch longer than the bound is kept whole
    assert seen.ids == ["v", "w", "x", "y", "z"] and "e" not in seen
    assert json.loads(json.dumps(seen.ids)) == SeenIds(seen.ids).ids  # stored as a plain list


def test_a_sweep_moves_the_watermark_only_when_it_ends_and_resumes_from_json():
    stream = {"watermark": 100, "seen": ["a"], "sweep": new_sweep(100, page=0)}
    for when, item in ((130, "x"), (130, "y"), (110, "z")):
        sweep_saw(stream["sweep"], when, item)
    assert stream["watermark"] == 100  # mid-sweep: an interrupted run resumes this sweep
    stream = json.loads(json.dumps(stream))  # stored and read back
    assert stream["sweep"] == {"since": 100, "page": 0, "top": 130, "top_seen": ["x", "y"]}
    end_sweep(stream)
    assert stream == {"watermark": 130, "seen": ["x", "y"], "sweep": None}


def test_a_sweep_that_met_nothing_keeps_the_watermark_or_takes_its_lower_bound():
    stream = {"watermark": 100, "seen": ["a"], "sweep": new_sweep(100)}
    end_sweep(stream)
    assert stream == {"watermark": 100, "seen": ["a"], "sweep": None}
    stream = {"watermark": None, "seen": [], "sweep": new_sweep(50)}
    end_sweep(stream)
    assert stream["watermark"] == 50


def test_a_sweep_whose_newest_item_ties_the_watermark_adds_to_its_ties():
    stream = {"watermark": 100, "seen": ["a"], "sweep": new_sweep(100)}
    sweep_saw(stream["sweep"], 100, "b")
    end_sweep(stream)
    assert stream == {"watermark": 100, "seen": ["a", "b"], "sweep": None}


def test_a_backfill_sweep_ends_the_stream():
    stream = {"seen": [], "sweep": new_sweep(10)}
    end_backfill(stream)
    assert stream == {"seen": [], "sweep": None, "done": True}


def test_chained_streams_carry_each_page_cursor_into_the_next_stream():
    def poll(stream, cursor):
        yield Page([], {**cursor, stream: "done"})
    pages = list(chain_streams(["a", "b"], {"old": 1}, poll))
    assert [p.cursor for p in pages] == [{"old": 1, "a": "done"}, {"old": 1, "a": "done", "b": "done"}]


def test_a_stream_cursor_yields_a_page_only_when_it_carries_something_and_keeps_the_other_streams():
    position = StreamCursor({"other": {"since_id": "5"}, "search": {"since_id": "9"}}, "search")
    assert position.move({"since_id": "9"}, [], []) is None  # an idle poll stores nothing
    page = position.move({"since_id": "12"}, [], [])
    assert page.cursor == {"other": {"since_id": "5"}, "search": {"since_id": "12"}}
    assert position.move({"since_id": "12"}, [], ["search: data[0]: id: missing"]).errors
