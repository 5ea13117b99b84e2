"""scores.batch_id without its foreign key

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 19:20:00

Loading 1M scores into PostgreSQL spent most of its time in row-level foreign-key triggers; the one on
`scores.batch_id` alone cost ~11 s of a ~31 s load (measured with and without it; docs/benchmarks.md). The value
is always the batch row the loader inserted at the start of the same transaction (etl/load.py), and no code path
deletes or renumbers batches, so the database check repeated what the loader guarantees. The integrity trade-off:
a hand-written INSERT can now store a batch_id that names no batch. The foreign keys to `patients` and `measures`
stay (validation checks both too, but they guard against hand edits and are covered by tests).

SQLite cannot drop a constraint in place: the table is rebuilt (batch mode, WITHOUT ROWID kept), which copies
every score once.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FK = "fk_scores_batch_id_etl_batches"


def upgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_with_rowid": False}) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_with_rowid": False}) as batch_op:
        batch_op.create_foreign_key(FK, "etl_batches", ["batch_id"], ["batch_id"])
