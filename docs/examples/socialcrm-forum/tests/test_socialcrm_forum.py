"""The forum source against socialcrm's contract tests, with Discourse's documented /posts.json."""
import json

from socialcrm.testing import SourceContract, Upstream
from socialcrm_forum import ForumSource

BASE = "https://community.brightwave.example"
# Fields of a post in Discourse's documented GET /posts.json answer (`latest_posts[]`) that the source reads.
DOCUMENTED_FIELDS = {"id", "username", "name", "display_username", "user_id", "created_at", "raw", "post_url",
                     "post_type", "hidden", "deleted_at", "user_deleted", "reply_count", "quote_count"}


def discourse_post(item, **changes):
    """One entry of ``latest_posts`` as Discourse documents it (every required field)."""
    post = {
        "id": item.id, "name": item.author_name, "username": item.author_handle,
        "avatar_template": f"/user_avatar/community.brightwave.example/{item.author_handle}/{{size}}/2_2.png",
        "created_at": item.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "cooked": "<p>" + item.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</p>",
        "post_number": 2, "post_type": 1, "posts_count": 2, "updated_at": item.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "reply_count": item.replies, "reply_to_post_number": None, "quote_count": 0, "incoming_link_count": 0,
        "reads": 3, "readers_count": 2, "score": 0.6, "yours": False, "topic_id": 4100 + item.id % 7,
        "topic_slug": "wavebox-help", "topic_title": "WaveBox help", "topic_html_title": "WaveBox help",
        "category_id": 5, "display_username": item.author_name, "primary_group_name": None, "flair_name": None,
        "flair_url": None, "flair_bg_color": None, "flair_color": None, "flair_group_id": None,
        "badges_granted": [], "version": 1, "can_edit": False, "can_delete": False, "can_recover": False,
        "can_see_hidden_post": False, "can_wiki": False, "user_title": None, "bookmarked": False,
        "raw": item.text, "actions_summary": [{"id": 2, "can_act": True}], "moderator": False, "admin": False,
        "staff": False, "user_id": int(item.author_id[1:]), "hidden": False, "trust_level": 1, "deleted_at": None,
        "user_deleted": False, "edit_reason": None, "can_view_edit_history": True, "wiki": False,
        "excerpt": item.text[:100], "truncated": False, "reviewable_id": None, "reviewable_score_count": 0,
        "reviewable_score_pending_count": 0, "post_url": f"/t/wavebox-help/{4100 + item.id % 7}/2",
    }
    post.update(changes)
    return post


def serve_latest_posts(upstream, api, changes=None):
    """GET /posts.json: the newest ``upstream.page_size`` posts, or those below ``before``."""
    def latest_posts(request):
        before = request.params.get("before")
        page = upstream.before(int(before) if before else None, upstream.page_size)
        posts = [discourse_post(item, **(changes or {}).get(item.id, {})) for item in page]
        return 200, {"Content-Type": "application/json"}, json.dumps({"latest_posts": posts})
    api.add_callback("GET", f"{BASE}/posts.json", callback=upstream.guard(latest_posts))


class TestForumSource(SourceContract):
    plugin = ForumSource
    config = {"base_url": BASE, "api_key": "d1scourse-test-key", "api_username": "system"}
    invalid_configs = [({"base_url": "community.brightwave.example"}, "base_url"),
                       ({"api_username": None}, "api_username"),
                       ({"first_run_pages": 0}, "first_run_pages")]

    def serve(self, upstream, api):
        serve_latest_posts(upstream, api)

    def native_id(self, item):
        return f"community.brightwave.example/{item.id}"


def test_the_fake_posts_carry_the_documented_fields_the_source_reads():
    upstream = Upstream()
    upstream.publish(1)
    assert DOCUMENTED_FIELDS <= set(discourse_post(upstream.items[0]))


def test_whispers_and_hidden_posts_are_not_mentions(mock_api, plugin_context):
    upstream = Upstream(page_size=5)
    whisper, hidden, kept = upstream.publish(3)
    serve_latest_posts(upstream, mock_api, {whisper.id: {"post_type": 4}, hidden.id: {"hidden": True}})
    config = {"base_url": BASE}
    source = ForumSource(ForumSource.ConfigSchema().load(config), plugin_context(ForumSource, config))
    pages = list(source.fetch(None))
    assert [m.native_id for p in pages for m in p.mentions] == [f"community.brightwave.example/{kept.id}"]
    assert pages[-1].cursor == {"last_id": kept.id}  # skipped posts still move the cursor on


def test_api_key_and_username_are_sent(mock_api, plugin_context):
    upstream = Upstream()
    serve_latest_posts(upstream, mock_api)
    config = TestForumSource.config
    source = ForumSource(ForumSource.ConfigSchema().load(config), plugin_context(ForumSource, config))
    assert list(source.fetch(None)) == []
    sent = mock_api.calls[0].request.headers
    assert (sent["Api-Key"], sent["Api-Username"]) == ("d1scourse-test-key", "system")
