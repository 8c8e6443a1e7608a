"""The store's schema migrations, run by Alembic: ``env.py``, the revision template and ``versions/``.

Nothing here is imported by the store at run time except through Alembic: ``socialcrm.core.store.migrating``
points Alembic at this folder (``socialcrm.core.store:migrations``) and hands ``env.py`` the connection to
migrate. ``baseline`` is the layout revision 0001 makes, frozen, and the adoption of a database that an
earlier socialcrm made with ``create_all`` (no version table). The README's "Schema migrations" section
says how to add a revision.
"""
