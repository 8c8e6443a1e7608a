"""Alembic's revisions of the store's schema, one file each, oldest first (``0001_baseline.py``...).

A package only so that installing socialcrm ships the files; Alembic reads them itself.
"""
