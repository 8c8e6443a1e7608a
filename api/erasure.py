"""Erasure and the do-not-engage list (admin scope).

``POST /erasures`` removes everything held about one author on one network (mentions, records, their
deliveries and feedback) and audits the erasure by a salted hash and counts, never the handle.
``/do-not-engage`` keeps a person's mentions out of every sink (drafts, alerts, CRM records): their
records are still learned, for the counts, but routed nowhere.
"""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from socialcrm.core.services import erasure as service

from .auth import caller, needs
from .errors import abort
from .query import query_arguments
from .schemas import (AuthorKeySchema, AuthorRefSchema, DoNotEngageEntrySchema, DoNotEngageResultSchema,
                      ErasureResultSchema)
from .state import state

blp = Blueprint("privacy", __name__, description="Erasure of an author's data; the do-not-engage list")


@blp.route("/erasures", methods=["POST"])
@needs(blp, "admin")
@blp.arguments(AuthorRefSchema)
@blp.response(200, ErasureResultSchema)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def erase(data: dict[str, Any]):
    """Remove everything held about one author: mentions, records, deliveries, feedback."""
    st = state()
    return service.erase_author(st.runtime.store, st.config, data["network"], data["author"], caller(), st.clock())


@blp.route("/do-not-engage", methods=["GET"])
@needs(blp, "admin")
@query_arguments(blp)
@blp.response(200, DoNotEngageEntrySchema(many=True))
def list_do_not_engage(_query: dict):
    """The do-not-engage list: entries from the config and those added here, by salted key."""
    st = state()
    return service.do_not_engage_list(st.runtime.store, st.config)


@blp.route("/do-not-engage", methods=["POST"])
@needs(blp, "admin")
@blp.arguments(AuthorRefSchema)
@blp.response(200, DoNotEngageResultSchema)
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def add_do_not_engage(data: dict[str, Any]):
    """Put an author on the do-not-engage list; their deliveries not yet sent are cancelled."""
    st = state()
    return service.add_to_do_not_engage(st.runtime.store, st.config, data["network"], data["author"], caller(),
                                        now=st.clock())


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
    try:
        service.remove_from_do_not_engage(st.runtime.store, st.config, key, caller(), now=st.clock())
    except service.ConfiguredEntry as exc:
        abort(409, str(exc), {"key": ["set in the config"]})
    except service.NotOnList as exc:
        abort(404, str(exc), {"key": ["not on the list"]})
    return None
