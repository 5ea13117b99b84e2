"""outcome_pack: the outcomes page's per-episode rules stored as packed columns per clinic

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 22:10:00

The filter-change callback of the outcomes page aggregated ~65 sums over every filtered episode in SQL: 0.5-1.3 s
clinic-wide at 100k patients on SQLite, where each aggregate costs ~6-25 ms per 100k rows in the VM. The summary
refresh now evaluates the page's rules once per episode and stores them per clinic as fixed-layout records
(warehouse/outcome_pack.py); the callback reads the packs of the viewer's clinics (scope in SQL on this table's
clinic_id) and sums them with numpy. The packs are filled by the summary rebuild that `python -m etl init` runs
after an upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcome_pack",
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column(
            "layout", sa.String(64), nullable=False, comment="rules and column layout the pack was built with"
        ),
        sa.Column("n_episodes", sa.Integer, nullable=False),
        sa.Column("n_type_rows", sa.Integer, nullable=False),
        sa.Column(
            "names",
            sa.Text,
            nullable=False,
            comment="JSON: the therapist and exercise-type ids the codes index",
        ),
        sa.Column(
            "episodes",
            sa.LargeBinary,
            nullable=False,
            comment="one packed record per episode (outcome_pack.py)",
        ),
        sa.Column(
            "types",
            sa.LargeBinary,
            nullable=False,
            comment="one packed record per episode x setting x type",
        ),
        sa.Column("built_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("clinic_id", name=op.f("pk_outcome_pack")),
        comment="Per clinic, the outcomes page's rules evaluated for every episode, as packed columns "
        "(warehouse/outcome_pack.py; written by the summary refresh, migration 0007).",
    )


def downgrade() -> None:
    op.drop_table("outcome_pack")
