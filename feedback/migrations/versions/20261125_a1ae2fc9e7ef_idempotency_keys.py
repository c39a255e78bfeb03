"""idempotency keys for answer submissions

Revision ID: a1ae2fc9e7ef
Revises: 6579d3a35691
Create Date: 2026-11-25 21:52:56.828955
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from feedback.models.types import UTCDateTime

revision: str = "a1ae2fc9e7ef"
down_revision: str | None = "6579d3a35691"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("invitation_id", sa.Uuid(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["invitation_id"], ["invitation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("invitation_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_key")
