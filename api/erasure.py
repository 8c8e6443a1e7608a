"""Erasure and the do-not-engage list (admin scope).

``POST /erasures`` removes everything held about one author on one network (mentions, records, their
deliveries and feedback) and audits the erasure by a salted hash and counts, never the handle.
``/do-not-engage`` keeps a person's mentions out of every sink (drafts, alerts, CRM records): their
records are still learned, for the counts, but routed nowhere.
"""
from __future__ import annotations

import logging
from typing import Any

from flask_smorest import Blueprint

from socialcrm.core.engine.donotengage import author_key, configured_keys
from socialcrm.core.store import Store

from .auth import caller, needs
from .errors import abort
from .schemas import (AuthorKeySchema, AuthorRefSchema, DoNotEngageEntrySchema, DoNotEngageResultSchema,
                      ErasureResultSchema)
from .state import state

log = logging.getLogger(__name__)

blp = Blueprint("privacy", __name__, description="Erasure of an author's data; the do-not-engage list")


def erase_author(store: Store, network: str, handle: str, actor: str, salt: str, now: float | None = None
                 ) -> dict[str, int]:
    """Erase one author's data (the API and ``socialcrm erase`` share this); logs counts, not the handle."""
    counts = store.erase_author(network, handle, actor, author_key(network, handle, salt), now=now)
    log.info("erased an author's data on %s for %s: %s", network, actor, counts)
    return counts


@blp.route("/erasures", methods=["POST"])
@needs(blp, "admin")
@blp.arguments(AuthorRefSchema)
@blp.response(200, ErasureResultSchema)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def erase(data: dict[str, Any]):
    """Remove everything held about one author: mentions, records, deliveries, feedback."""
    st = state()
    return erase_author(st.store, data["network"], data["author"], caller(), st.config.privacy.hash_salt, st.clock())


@blp.route("/do-not-engage", methods=["GET"])
@needs(blp, "admin")
@blp.response(200, DoNotEngageEntrySchema(many=True))
def list_do_not_engage():
    """The do-not-engage list: entries from the config and those added here, by salted key."""
    st = state()
    stored = [{**row, "origin": "api"} for row in st.store.do_not_engage_entries()]
    seen = {row["author_key"] for row in stored}
    from_config = [{"author_key": key, "network": None, "origin": "config", "added_at": None, "added_by": None}
                   for key in sorted(configured_keys(st.config.privacy)) if key not in seen]
    return from_config + stored


@blp.route("/do-not-engage", methods=["POST"])
@needs(blp, "admin")
@blp.arguments(AuthorRefSchema)
@blp.response(200, DoNotEngageResultSchema)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def add_do_not_engage(data: dict[str, Any]):
    """Put an author on the do-not-engage list; their deliveries not yet sent are cancelled."""
    st = state()
    key = author_key(data["network"], data["author"], st.config.privacy.hash_salt)
    result = st.store.add_do_not_engage(key, data["network"], data["author"], caller(), now=st.clock())
    return {"author_key": key, **result}


@blp.route("/do-not-engage/<string(length=64):key>", methods=["DELETE"])
@needs(blp, "admin")
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def remove_do_not_engage(key: str):
    """Take an author (by the key the list shows) off the list; config entries are removed in the config."""
    st = state()
    errors = AuthorKeySchema().validate({"author_key": key})
    if errors:
        abort(404, "no such entry: an author key is 64 hex characters", {"key": errors["author_key"]})
    if not st.store.remove_do_not_engage(key, caller(), now=st.clock()):
        if key in configured_keys(st.config.privacy):
            abort(409, "this entry comes from the config: remove it from [privacy] do_not_engage",
                  {"key": ["set in the config"]})
        abort(404, "no such entry on the do-not-engage list", {"key": ["not on the list"]})
    return None
