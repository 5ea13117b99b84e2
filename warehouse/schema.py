"""Tables of the warehouse, in SQLAlchemy Core. The one definition the ETL, the dashboard and Alembic import.

Natural keys are the clinic's own identifiers (pseudonymous ids as exported), so a re-export of the same rows finds
them again; surrogate integer keys exist only where the source has none (episodes, facts).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

SEXES = ("F", "M", "X", "U")
SETTINGS = ("clinic", "home")
STATUSES = ("completed", "partial", "skipped", "missed")
SIDES = ("", "left", "right", "both")


def _batch_fk() -> Column:
    return Column("batch_id", Integer, ForeignKey("etl_batches.batch_id"), nullable=False)


# --- lineage ---------------------------------------------------------------------------------------------------
etl_batches = Table(
    "etl_batches",
    metadata,
    Column("batch_id", Integer, primary_key=True, autoincrement=True),
    Column("file_name", String(512), nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("mapping", String(512)),
    Column("loaded_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(32), nullable=False),
    Column("rows_read", Integer, nullable=False, server_default="0"),
    Column("rows_inserted", Integer, nullable=False, server_default="0"),
    Column("rows_updated", Integer, nullable=False, server_default="0"),
    Column("rows_unchanged", Integer, nullable=False, server_default="0"),
    Column("rows_rejected", Integer, nullable=False, server_default="0"),
    Column("message", Text),
)

etl_rejects = Table(
    "etl_rejects",
    metadata,
    Column("reject_id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("etl_batches.batch_id"), nullable=False, index=True),
    Column("source_line", Integer, nullable=False),
    Column("raw_row", Text, nullable=False),
    Column("reasons", Text, nullable=False),
)

fact_revisions = Table(
    "fact_revisions",
    metadata,
    Column("revision_id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("etl_batches.batch_id"), nullable=False, index=True),
    Column("table_name", String(64), nullable=False),
    Column("row_key", Text, nullable=False),
    Column("old_values", Text, nullable=False),
    Column("old_batch_id", Integer, nullable=False),
    comment="Values a corrected re-export replaced: nothing is overwritten without a trace.",
)

# --- catalogs (data, seeded from warehouse/catalog/*.toml) ------------------------------------------------------
measures = Table(
    "measures",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("unit", String(32), nullable=False),
    Column("min_value", Float, nullable=False),
    Column("max_value", Float, nullable=False),
    Column("better", String(8), nullable=False),
    Column("mcid_abs", Float),
    Column("mcid_pct", Float),
    Column("threshold_kind", String(32), nullable=False),
    Column("threshold_source", Text),
    Column("loinc", String(32)),
    Column("side_applies", Boolean, nullable=False, server_default="0"),
    Column("sort_order", Integer, nullable=False, server_default="100"),
    CheckConstraint("better IN ('lower', 'higher')", name="better"),
    CheckConstraint("min_value < max_value", name="range"),
)

exercise_types = Table(
    "exercise_types",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("clinic_only", Boolean, nullable=False, server_default="0"),
    Column("description", Text),
)

# --- dimensions -------------------------------------------------------------------------------------------------
clinics = Table(
    "clinics",
    metadata,
    Column("clinic_id", String(64), primary_key=True),
    Column("name", String(200)),
    _batch_fk(),
)

therapists = Table(
    "therapists",
    metadata,
    Column("therapist_id", String(64), primary_key=True),
    Column("clinic_id", String(64), ForeignKey("clinics.clinic_id"), nullable=False, index=True),
    Column("name", String(200)),
    _batch_fk(),
)

patients = Table(
    "patients",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("clinic_id", String(64), ForeignKey("clinics.clinic_id"), nullable=False, index=True),
    Column("therapist_id", String(64), ForeignKey("therapists.therapist_id"), nullable=False, index=True),
    Column("birth_year", Integer, nullable=False),
    Column("sex", String(1), nullable=False),
    Column("first_name", String(200), comment="PHI: never exported"),
    Column("last_name", String(200), comment="PHI: never exported"),
    _batch_fk(),
    Column("source_line", Integer, nullable=False),
    CheckConstraint("sex IN ('F', 'M', 'X', 'U')", name="sex"),
)

episodes = Table(
    "episodes",
    metadata,
    Column("episode_id", Integer, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), ForeignKey("patients.patient_id"), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("side", String(8), nullable=False, server_default=""),
    Column("symptom_onset", Date),
    _batch_fk(),
    Column("source_line", Integer, nullable=False),
    UniqueConstraint("patient_id", "start_date", name="uq_episodes_patient_start"),
)

exercises = Table(
    "exercises",
    metadata,
    Column("exercise", String(200), primary_key=True),
    Column("exercise_type", String(64), ForeignKey("exercise_types.code"), nullable=False),
)

# --- facts ------------------------------------------------------------------------------------------------------
sessions = Table(
    "sessions",
    metadata,
    Column("session_id", Integer, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), ForeignKey("patients.patient_id"), nullable=False),
    Column("session_date", Date, nullable=False),
    Column("setting", String(8), nullable=False),
    Column("exercise", String(200), ForeignKey("exercises.exercise"), nullable=False),
    Column("exercise_type", String(64), ForeignKey("exercise_types.code"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("sets", Integer),
    Column("reps", Integer),
    Column("duration_min", Float),
    Column("prescribed_sets", Integer),
    Column("prescribed_reps", Integer),
    Column("prescribed_min", Float),
    Column("pain_during", Float),
    Column("skip_reason", String(200)),
    Column("therapist_id", String(64)),
    _batch_fk(),
    Column("source_line", Integer, nullable=False),
    UniqueConstraint("patient_id", "session_date", "setting", "exercise", name="uq_sessions_natural_key"),
    CheckConstraint("setting IN ('clinic', 'home')", name="setting"),
    CheckConstraint("status IN ('completed', 'partial', 'skipped', 'missed')", name="status"),
)

scores = Table(
    "scores",
    metadata,
    # The natural key is the primary key, and on SQLite the table is clustered by it (WITHOUT ROWID): one B-tree
    # to write instead of two, and a patient's series for one measure is a single contiguous range.
    # No foreign keys on this table (migrations 0006, 0008): the loader checks patient and measure set-wise in
    # the load's transaction and always writes the batch it created; the per-row checks were most of the cost of
    # loading scores into PostgreSQL.
    Column("patient_id", String(64), primary_key=True),
    Column("measure", String(64), primary_key=True),
    Column("recorded_at", DateTime, primary_key=True),
    Column("side", String(8), primary_key=True, server_default=""),
    Column("value", Float, nullable=False),
    Column("batch_id", Integer, nullable=False),
    Column("source_line", Integer, nullable=False),
    sqlite_with_rowid=False,
)

# --- marts the dashboard reads (refreshed by the ETL after each load) --------------------------------------------
#: Measures whose per-episode summary is also kept as columns of `episode_summary`, so that the caseload reads
#: one row per episode (no join per measure) at 100,000 patients. The long table keeps every measure.
WIDE_MEASURES: tuple[str, ...] = (
    "pain_leg",
    "pain_back",
    "numbness",
    "odi",
    "slr_left",
    "slr_right",
    "lumbar_flexion",
)
WIDE_FIELDS: dict[str, str] = {
    "baseline": "baseline_value",
    "latest": "latest_value",
    "change": "change",
    "mcid": "mcid_reached",
    "worsened": "worsened",
}


def _wide_columns() -> list[Column]:
    cols = []
    for code in WIDE_MEASURES:
        for suffix in WIDE_FIELDS:
            kind = Boolean if suffix in ("mcid", "worsened") else Float
            cols.append(Column(f"{code}_{suffix}", kind))
    return cols


#: The caseload's flags, in display order (their rules: warehouse/flag_rules.py).
CASELOAD_FLAGS: tuple[str, ...] = (
    "worsening",
    "not_responding",
    "low_adherence",
    "no_recent_data",
    "missing_baseline",
)

episode_summary = Table(
    "episode_summary",
    metadata,
    Column("episode_id", Integer, ForeignKey("episodes.episode_id"), primary_key=True),
    Column("patient_id", String(64), nullable=False, index=True),
    Column("clinic_id", String(64), nullable=False),
    Column("therapist_id", String(64), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("is_active", Boolean, nullable=False),
    Column("visits", Integer, nullable=False),
    Column("home_scheduled", Integer, nullable=False),
    Column("home_done", Float, nullable=False),
    Column("adherence", Float, comment="done / scheduled home sessions; NULL when none scheduled"),
    Column("home_scheduled_14d", Integer, nullable=False),
    Column("home_done_14d", Float, nullable=False),
    Column("adherence_14d", Float),
    Column("first_activity", Date),
    Column("last_activity", Date),
    Column("as_of", Date, nullable=False),
    Column("refreshed_at", DateTime, nullable=False),
    *_wide_columns(),
    # Caseload flags as of `as_of` (0/1, migration 0004): written by the summary refresh, rules in warehouse/flag_rules.
    *(Column(f"flag_{name}", SmallInteger, nullable=False, server_default="0") for name in CASELOAD_FLAGS),
    Column("n_flags", SmallInteger, nullable=False, server_default="0"),
    Index("ix_episode_summary_clinic_therapist", "clinic_id", "therapist_id"),
    Index("ix_episode_summary_active_flags", "is_active", "n_flags", "last_activity", "episode_id"),
    Index(
        "ix_episode_summary_active_flag_counts",
        "is_active",
        "clinic_id",
        "therapist_id",
        *(f"flag_{name}" for name in CASELOAD_FLAGS),
    ),
    Index("ix_episode_summary_therapist", "therapist_id", "is_active"),
)

episode_measure_summary = Table(
    "episode_measure_summary",
    metadata,
    Column("episode_id", Integer, ForeignKey("episodes.episode_id"), primary_key=True),
    Column("measure", String(64), ForeignKey("measures.code"), primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Column("n_values", Integer, nullable=False),
    Column("baseline_value", Float, comment="NULL when nothing was measured in the baseline window"),
    Column("baseline_at", DateTime),
    Column("latest_value", Float),
    Column("latest_at", DateTime),
    Column("change", Float, comment="latest - baseline, in the measure's unit"),
    Column("pct_change", Float, comment="change / baseline x 100; NULL when baseline is 0 or missing"),
    Column("improvement", Float, comment="change signed so that positive is better"),
    Column("mcid_reached", Boolean),
    Column("worsened", Boolean, comment="moved the wrong way by at least the threshold"),
    Index("ix_episode_measure_summary_measure", "measure", "mcid_reached"),
)

#: `episode_exercise_dose.setting` for home and clinic together (the outcomes page's default setting filter).
DOSE_ALL_SETTINGS = "all"

# Outcomes page marts (migration 0005), written by the summary refresh (etl/summary_dose.py) so the page never
# groups `sessions` or searches `scores`. Sessions count for an episode when dated from its start to its end (or
# after its start while it is open); only completed and partial sessions are dose.
episode_exercise_dose = Table(
    "episode_exercise_dose",
    metadata,
    Column("episode_id", Integer, ForeignKey("episodes.episode_id"), primary_key=True),
    Column("setting", String(8), primary_key=True, comment="home, clinic, or 'all' (both together)"),
    Column("exercise_type", String(64), ForeignKey("exercise_types.code"), primary_key=True),
    Column("patient_id", String(64), nullable=False, index=True),
    Column("done", Float, nullable=False, comment="done sessions: completed 1, partial 0.5"),
    Column(
        "minutes", Float, nullable=False, comment="minutes done; partial without duration: prescribed x 0.5"
    ),
    Column(
        "share",
        Float,
        nullable=False,
        comment="this type's share of the episode's minutes in this setting (of done sessions when no minutes)",
    ),
    CheckConstraint("setting IN ('clinic', 'home', 'all')", name="setting"),
    sqlite_with_rowid=False,
    comment="Never sum across settings: the 'all' rows already are home + clinic.",
)

episode_first_mcid = Table(
    "episode_first_mcid",
    metadata,
    Column("episode_id", Integer, ForeignKey("episodes.episode_id"), primary_key=True),
    Column("measure", String(64), ForeignKey("measures.code"), primary_key=True),
    Column("patient_id", String(64), nullable=False, index=True),
    Column(
        "first_mcid_at",
        DateTime,
        nullable=False,
        comment="first value at or after the start reaching the MCID",
    ),
    Column(
        "days_to_mcid", Integer, nullable=False, comment="calendar days from the start to that value's day"
    ),
    comment="Episodes whose summary reached the MCID (episode_measure_summary.mcid_reached) and when.",
)

outcome_pack = Table(
    "outcome_pack",
    metadata,
    Column("clinic_id", String(64), primary_key=True),
    Column("layout", String(64), nullable=False, comment="rules and column layout the pack was built with"),
    Column("n_episodes", Integer, nullable=False),
    Column("n_type_rows", Integer, nullable=False),
    Column(
        "names", Text, nullable=False, comment="JSON: the therapist and exercise-type ids the codes index"
    ),
    Column(
        "episodes", LargeBinary, nullable=False, comment="one packed record per episode (outcome_pack.py)"
    ),
    Column("types", LargeBinary, nullable=False, comment="one packed record per episode x setting x type"),
    Column("built_at", DateTime, nullable=False),
    comment="Per clinic, the outcomes page's rules evaluated for every episode, as packed columns "
    "(warehouse/outcome_pack.py; written by the summary refresh, migration 0007).",
)


# =================================================================================================================
# --- access control and audit (dashboard login, migration 0003) ---------------------------------------------------
# Users of the dashboard and an append-only audit trail. Kept apart from the clinical tables: nothing here is loaded
# by the ETL. `audit_log` rows are only ever inserted (triggers refuse UPDATE and DELETE, see migration 0003); the
# failed-login rows in it are also what the login throttle counts, so every worker process agrees.
ROLES = ("therapist", "manager", "researcher", "admin")

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200)),
    Column("password_hash", String(255), nullable=False, comment="argon2id, never a plain password"),
    Column("role", String(16), nullable=False),
    Column("therapist_id", String(64), comment="role therapist: whose caseload the user sees"),
    Column("clinic_ids", Text, comment="role manager: the clinics the user sees, comma-separated"),
    Column("is_active", Boolean, nullable=False, server_default="1"),
    Column(
        "session_version",
        Integer,
        nullable=False,
        server_default="0",
        comment="bumped on logout, disable, role or password change: older session cookies stop working",
    ),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("password_changed_at", DateTime, nullable=False),
    Column("last_login_at", DateTime),
    CheckConstraint("role IN ('therapist', 'manager', 'researcher', 'admin')", name="role"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("user_id", Integer, comment="NULL for a failed login with an unknown name"),
    Column("username", String(64), comment="as typed, for failed logins"),
    Column("role", String(16)),
    Column("action", String(32), nullable=False),
    Column("outcome", String(16), nullable=False, comment="ok, failed, locked, denied, not_found"),
    Column("target", String(200), comment="patient id, user name or file the action was about"),
    Column("detail", Text, comment="JSON: filters, cohort definition, row counts"),
    Column("ip", String(64)),
    Column("request_id", String(32)),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_username_at", "username", "at"),
    Index("ix_audit_log_ip_at", "ip", "at"),
    Index("ix_audit_log_action_at", "action", "at"),
)
