"""Component ids of the login layer's own components (the user bar and the admin pages)."""

USER_BAR = "auth-user-bar"
LOCAL_BANNER = "auth-local-banner"
LOGOUT_FORM = "auth-logout-form"
LOGOUT_BUTTON = "auth-logout"

ACCOUNT = "auth-account"

ADMIN_USERS_GRID = "admin-users-grid"
ADMIN_ETL_GRID = "admin-etl-grid"
ADMIN_ETL_COUNTS = "admin-etl-counts"

AUDIT_USERNAME = "audit-username"
AUDIT_ACTION = "audit-action"
AUDIT_TARGET = "audit-target"
AUDIT_IP = "audit-ip"
AUDIT_DATES = "audit-dates"
AUDIT_GRID = "audit-grid"
AUDIT_SUMMARY = "audit-summary"
AUDIT_CSV_LINK = "audit-csv-link"
AUDIT_REFRESH = "audit-refresh"
