from socialcrm.core.sdk.brand import Brand
from socialcrm.core.engine.capture import capture
from socialcrm.core.sdk.model import mention_from_json

BRAND = Brand("Brightwave", handles=["@Brightwave", "@BrightwaveHelp"])


def mentions(*items):
    return [mention_from_json(i) for i in items]


def test_duplicates_in_the_page_and_in_the_store_are_dropped(mention_json):
    page = mentions(mention_json("1", "a"), mention_json("1", "a"), mention_json("2", "b"))
    out = capture(page, seen_mentions={"x:2"}, seen_records={"x:2"}, brand=BRAND)
    assert [m.id for m in out.new] == ["x:1"]
    assert [m.id for m in out.to_learn] == ["x:1"]
    assert out.duplicates == 2


def test_reposts_of_a_seen_mention_count_toward_its_reach(mention_json):
    page = mentions(mention_json("1", "outage!"),
                    mention_json("2", "RT @user1: outage!", repost_of="x:1"),
                    mention_json("3", "RT @user9: old", repost_of="x:9"),
                    mention_json("4", "RT @user9: old", repost_of="x:9"))
    out = capture(page, seen_mentions={"x:9"}, seen_records={"x:9"}, brand=BRAND)
    assert [m.id for m in out.to_learn] == ["x:1"]
    assert dict(out.reposts) == {"x:1": 1, "x:9": 2}
    assert len(out.new) == 4  # every mention is kept for audit, raw payload included


def test_a_repost_of_an_unseen_original_carries_it_once(mention_json):
    page = mentions(mention_json("5", "RT @a: wifi down", repost_of="x:4"),
                    mention_json("4", "wifi down"))
    out = capture(page, set(), set(), BRAND)
    assert [m.canonical_id for m in out.to_learn] == ["x:4"]
    # The original, arriving later, is the same content: the repost that carried it counts toward reach.
    assert out.duplicates == 0 and dict(out.reposts) == {"x:4": 1}


def test_the_brands_own_posts_and_empty_posts_are_not_learned(mention_json):
    own = mention_json("1", "We're on it!", author={"handle": "BrightwaveHelp"})
    out = capture(mentions(own, mention_json("2", "   ")), set(), set(), BRAND)
    assert out.to_learn == [] and out.own_posts == 1 and out.empty == 1


def test_near_identical_posts_share_a_fingerprint_and_are_counted_per_other_account():
    from socialcrm.core.engine.capture import count_repeats, fingerprint
    a = fingerprint("WIN a FREE iPhone 17!!! Brightwave giveaway, click https://x.co/abc @friend #win")
    b = fingerprint("win a free iphone 16 brightwave giveaway click https://spam.example/z")
    assert a == b and fingerprint("too short to tell") is None
    known = {}
    assert count_repeats([(a, "u1"), (a, "u1"), (a, "u2"), (None, "u3")], known) == [0, 0, 1, 0]
    assert count_repeats([(a, "u3")], known) == [2]  # state carries over between pages


def test_a_wave_of_copies_is_spam_across_runs(config, plugins, tmp_path, mention_json, write_mentions):
    from socialcrm.core.engine.pipeline import Pipeline
    text = "Brightwave customers: claim your reward today at {} before it expires, only a few left"
    write_mentions(tmp_path / "mentions.jsonl", [mention_json(str(i), text.format(f"https://r{i}.example"),
                                                              author={"id": f"a{i}", "handle": f"acct{i}"})
                                                 for i in range(2)])
    first = Pipeline(config, plugins)
    first.run_once()
    first.close()
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("9", text.format("https://r9.example"),
                                                              author={"id": "a9", "handle": "acct9"})], mode="a")
    second = Pipeline(config, plugins)
    second.run_once()
    record = second.store.get_record("x:9")
    assert record.type == "spam" and record.route == []
    assert any("near-identical to 2 posts by other accounts" in r for r in record.reasons)
    second.close()
