"""scores without its foreign keys to patients and measures

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 00:20:00

The last row-level checks on the largest fact table. Loading 1M scores into PostgreSQL spent 7.3 s of a 10.3 s
insert in the two foreign-key triggers (one query per row and key), and SQLite 0.43 s per 1M rows in the parent
lookups (docs/benchmarks.md). Both keys are checked by the loader, set-wise, in the load's own transaction:
validation rejects a score whose patient is not in the warehouse (or earlier in the same file) and one whose measure
is not in the catalog (etl/validate.py), and nothing deletes patients or measures. The trade-off, as for batch_id in
0006: a hand-written INSERT can store an orphan score. `tests/etl/test_properties.py` checks after every generated
load that no score names an unknown patient or measure. `sessions` keeps its keys (its loads are ~10x smaller).

SQLite cannot drop a constraint in place: the table is rebuilt (batch mode, WITHOUT ROWID kept), which copies
every score once.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FKS = {
    "fk_scores_patient_id_patients": ("patients", ["patient_id"], ["patient_id"]),
    "fk_scores_measure_measures": ("measures", ["measure"], ["code"]),
}


def upgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_with_rowid": False}) as batch_op:
        for name in FKS:
            batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_with_rowid": False}) as batch_op:
        for name, (table, local, remote) in FKS.items():
            batch_op.create_foreign_key(name, table, local, remote)
