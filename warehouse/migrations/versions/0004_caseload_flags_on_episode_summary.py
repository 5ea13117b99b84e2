"""caseload flags stored on episode_summary

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 19:05:00

The caseload's five flags were computed per row at query time; clinic-wide (44k active episodes at 100k patients)
that meant evaluating and sorting every row for the first page. The flags are a function of the mart row and its
`as_of` only, so the summary refresh writes them (0/1) with their sum, and the caseload sorts on an index.
Existing rows get 0 here; `etl init` / `etl load` rebuild the marts after an upgrade.

Indexes: `ix_episode_summary_active_flags` serves the caseload's default order (`n_flags DESC, last_activity ASC
NULLS LAST, episode_id`): SQLite walks it backwards for `n_flags` and sorts only the first `n_flags` groups by the
rest ("RIGHT PART OF ORDER BY"), so the first page reads a few thousand index entries instead of every active row.
`ix_episode_summary_active_flag_counts` covers the flag counts (and the page's total) clinic-wide and per clinic,
so they are index-only scans instead of one table lookup per active episode.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FLAGS = (
    "flag_worsening",
    "flag_not_responding",
    "flag_low_adherence",
    "flag_no_recent_data",
    "flag_missing_baseline",
)
FLAG_COLUMNS = (*FLAGS, "n_flags")


def upgrade() -> None:
    with op.batch_alter_table("episode_summary", schema=None) as batch_op:
        for name in FLAG_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.SmallInteger(), nullable=False, server_default="0"))
        batch_op.create_index(
            "ix_episode_summary_active_flags", ["is_active", "n_flags", "last_activity", "episode_id"]
        )
        batch_op.create_index(
            "ix_episode_summary_active_flag_counts", ["is_active", "clinic_id", "therapist_id", *FLAGS]
        )


def downgrade() -> None:
    with op.batch_alter_table("episode_summary", schema=None) as batch_op:
        batch_op.drop_index("ix_episode_summary_active_flag_counts")
        batch_op.drop_index("ix_episode_summary_active_flags")
        for name in reversed(FLAG_COLUMNS):
            batch_op.drop_column(name)
