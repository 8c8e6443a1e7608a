"""The item helpers of the SDK that every source reads with."""
import pytest

from socialcrm import (Brand, ItemError, brand_terms, expand_links, html_to_text, iso_time, need, parse_time,
                       spans_of)


def test_brand_terms_are_name_and_keywords_once_and_handles_only_when_asked():
    brand = Brand("Brightwave", handles=["@Brightwave", "@BrightwaveHelp"], keywords=["WaveBox", "brightwave", " "])
    assert brand_terms(brand) == ["Brightwave", "WaveBox"]
    assert brand_terms(brand, handles=True) == ["Brightwave", "BrightwaveHelp", "WaveBox"]


def test_one_time_parser_reads_any_fraction_and_offset_and_names_the_field_of_an_item():
    assert parse_time("2027-01-15T08:00:00.123456789Z").isoformat() == "2027-01-15T08:00:00.123456+00:00"
    assert parse_time("2027-01-15T09:00:00+01:00").isoformat() == "2027-01-15T08:00:00+00:00"
    with pytest.raises(ItemError, match="^post 1: created_at: not an ISO 8601 timestamp: 'soon'$"):
        iso_time("soon", "post 1", "created_at")
    with pytest.raises(ItemError, match="^post 1: created_at: missing$"):
        iso_time(None, "post 1", "created_at")


def test_an_item_error_names_what_it_knows():
    assert str(ItemError("post 1", "text", "missing")) == "post 1: text: missing"
    assert str(ItemError(None, "record.text", "missing")) == "record.text: missing"
    assert str(ItemError(None, None, "not an object")) == "not an object"
    with pytest.raises(ItemError, match="post 2: id: expected text, got int 7"):
        need({"id": 7}, "id", "post 2")


def test_links_expand_by_character_spans_or_by_utf8_byte_spans():
    text = "caf\u00e9 see exa.mp/1 and exa.mp/1"
    spans = [(start, end, "https://example.com/one") for start, end in spans_of(text, "exa.mp/1")]
    assert expand_links(text, spans) == "caf\u00e9 see https://example.com/one and https://example.com/one"
    start = len("caf\u00e9 see ".encode("utf-8"))
    assert expand_links(text, [(start, start + 8, "https://example.com/one")], encoding="utf-8") == \
        "caf\u00e9 see https://example.com/one and exa.mp/1"
    assert expand_links("short", [(0, 99, "https://x.example")]) == "short"  # out of range: as written


def test_html_keeps_mentions_and_hashtags_as_written_and_spells_other_links_out():
    html = ('<p><a href="https://m.example/@help" class="u-url mention">@<span>help</span></a> see '
            '<a href="https://m.example/tags/wavebox" class="mention hashtag" rel="tag">#<span>WaveBox</span></a> '
            '<a href="https://status.example/x">status page</a></p>')
    assert html_to_text(html) == "@help see #WaveBox status page (https://status.example/x)"
