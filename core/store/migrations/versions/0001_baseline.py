"""Baseline: socialcrm 0.1.0's layout; a database made before migrations is adopted as it is.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""
from __future__ import annotations

from alembic import op

from socialcrm.core.store.migrations import baseline

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every table of the 0.1.0 layout the database lacks; bring the ones an earlier socialcrm made
    to that layout (their missing columns added and filled in, their missing indexes made)."""
    baseline.upgrade(op.get_bind())


def downgrade() -> None:
    """socialcrm never migrates down: restore the backup taken before `socialcrm db upgrade`."""
    raise NotImplementedError("socialcrm does not migrate down: restore the backup taken before upgrading")
