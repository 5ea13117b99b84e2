"""outcomes marts: episode_exercise_dose and episode_first_mcid

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 19:25:00

The outcomes page grouped 10.5M session rows per episode, type and setting and searched `scores` for the first
MCID, then kept the results per viewer scope in process memory. Both are now marts written by the summary refresh
(etl/summary_dose.py), read through their primary keys. Existing warehouses get empty tables here; `etl init` /
`etl refresh` fill them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "episode_exercise_dose",
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column(
            "setting", sa.String(length=8), nullable=False, comment="home, clinic, or 'all' (both together)"
        ),
        sa.Column("exercise_type", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("done", sa.Float(), nullable=False, comment="done sessions: completed 1, partial 0.5"),
        sa.Column(
            "minutes",
            sa.Float(),
            nullable=False,
            comment="minutes done; partial without duration: prescribed x 0.5",
        ),
        sa.Column(
            "share",
            sa.Float(),
            nullable=False,
            comment="this type's share of the episode's minutes in this setting (of done sessions when no minutes)",
        ),
        sa.CheckConstraint(
            "setting IN ('clinic', 'home', 'all')", name=op.f("ck_episode_exercise_dose_setting")
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.episode_id"],
            name=op.f("fk_episode_exercise_dose_episode_id_episodes"),
        ),
        sa.ForeignKeyConstraint(
            ["exercise_type"],
            ["exercise_types.code"],
            name=op.f("fk_episode_exercise_dose_exercise_type_exercise_types"),
        ),
        sa.PrimaryKeyConstraint(
            "episode_id", "setting", "exercise_type", name=op.f("pk_episode_exercise_dose")
        ),
        comment="Never sum across settings: the 'all' rows already are home + clinic.",
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("episode_exercise_dose", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_episode_exercise_dose_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "episode_first_mcid",
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("measure", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column(
            "first_mcid_at",
            sa.DateTime(),
            nullable=False,
            comment="first value at or after the start reaching the MCID",
        ),
        sa.Column(
            "days_to_mcid",
            sa.Integer(),
            nullable=False,
            comment="calendar days from the start to that value's day",
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"], ["episodes.episode_id"], name=op.f("fk_episode_first_mcid_episode_id_episodes")
        ),
        sa.ForeignKeyConstraint(
            ["measure"], ["measures.code"], name=op.f("fk_episode_first_mcid_measure_measures")
        ),
        sa.PrimaryKeyConstraint("episode_id", "measure", name=op.f("pk_episode_first_mcid")),
        comment="Episodes whose summary reached the MCID (episode_measure_summary.mcid_reached) and when.",
    )
    with op.batch_alter_table("episode_first_mcid", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_episode_first_mcid_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("episode_first_mcid", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_episode_first_mcid_patient_id"))
    op.drop_table("episode_first_mcid")
    with op.batch_alter_table("episode_exercise_dose", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_episode_exercise_dose_patient_id"))
    op.drop_table("episode_exercise_dose")
