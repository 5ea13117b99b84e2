"""The Flask side of the login layer: every request is checked on the server before Dash sees it.

`install(app, ctx, config)` adds to the Dash app's Flask server:
- a `before_request` hook: a request id; public paths (login page, static files) pass; everything else needs a valid
  session (signed cookie naming the user and their session version, checked against the warehouse on every request);
  state-changing requests need the CSRF token (`X-CSRFToken` header, which Dash's renderer sends from the
  `_csrf_token` cookie, or the login/logout form field) and a same-origin `Origin`/`Referer` when one is sent; pages
  and callbacks are allowed per role (`policy`); patient views and downloads are audited;
- `/login` (GET form, POST), `/logout` (POST), `/admin/audit.csv` (admin);
- an `after_request` hook: security headers (CSP with the hashes of Dash's inline scripts, X-Frame-Options DENY,
  Referrer-Policy no-referrer, nosniff), `Cache-Control: no-store` on pages and callbacks, the CSRF cookie.

In `no_auth` mode there is no login: one local viewer sees every clinic, and only requests addressed to a loopback
host name are served (a DNS-rebinding page cannot read the data).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from dash import Dash
from flask import Response, current_app, g, redirect, render_template_string, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard import ids as dash_ids
from dashboard.auth import audit, logs, policy, throttle
from dashboard.auth import users as store
from dashboard.auth.config import AuthConfig, is_loopback
from dashboard.context import AppContext
from dashboard.scope import Scope, scope_clause
from warehouse.schema import patients

log = logging.getLogger("dashboard.auth")

CSRF_COOKIE = "_csrf_token"  # the name dash-renderer reads to send X-CSRFToken
CSRF_HEADER = "X-CSRFToken"
SESSION_COOKIE = "outcomes_session"
PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/")
PUBLIC_PATHS = ("/login", "/_favicon.ico")
DASH_READ_PATHS = ("/_dash-layout", "/_dash-dependencies", "/_reload-hash")
CALLBACK_PATH = "/_dash-update-component"
LOCAL_USER = store.User(user_id=0, username="local", role=policy.LOCAL)
#: Audited as a patient view: the patient page's overview callback (reads the header for one patient id).
PATIENT_VIEW_OUTPUT = dash_ids.PATIENT_HEADER
PATIENT_VIEW_INPUT = dash_ids.PATIENT_ID


# --- the viewer, for the page callbacks ----------------------------------------------------------------------------
def current_user() -> store.User | None:
    return g.get("auth_user") if g else None


def session_scope() -> Scope:
    """The scope provider of an app with login: the signed-in user's scope; nothing outside a checked request."""
    user = current_user()
    if user is None:
        return Scope.clinics(())
    if user.role == policy.LOCAL:
        return Scope.clinic_wide()
    return user.scope()


def client_ip() -> str | None:
    return request.remote_addr


# --- session cookie ------------------------------------------------------------------------------------------------
class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with the Secure flag decided per request in `auto` mode (HTTPS -> Secure)."""

    def __init__(self, secure: str) -> None:
        self.secure = secure

    def get_cookie_secure(self, app) -> bool:
        if self.secure == "always":
            return True
        if self.secure == "never":
            return False
        return bool(request and request.is_secure)


def _csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok(sent: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(str(sent), str(expected)))


def _same_origin() -> bool:
    """False for a request another site made the browser send. Browsers say so in `Sec-Fetch-Site`; older ones in
    `Origin`/`Referer`. With `Referrer-Policy: no-referrer` a same-origin POST carries `Origin: null`, which proves
    nothing either way: then the CSRF token (login) or the JSON content type (callbacks) decides."""
    site = request.headers.get("Sec-Fetch-Site")
    if site in ("cross-site", "same-site"):
        return False
    sent = request.headers.get("Origin") or request.headers.get("Referer")
    if not sent or sent == "null":
        return True
    parts = urlsplit(sent)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def _safe_next(target: str | None, role: str) -> str:
    """Only a local path (no scheme, no host, no `//` or backslash tricks) may be a redirect target."""
    local = bool(target) and target.startswith("/") and not target.startswith("//") and "\\" not in target
    if local and urlsplit(target).netloc == "" and policy.path_allowed(role, urlsplit(target).path):
        return target
    return policy.HOME.get(role, "/account")


# --- pages of the login layer ---------------------------------------------------------------------------------------
LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · {{ title }}</title><link rel="stylesheet" href="/assets/01-bootstrap-5.3.8.min.css">
<link rel="stylesheet" href="/assets/02-theme.css"></head>
<body class="bg-light"><main class="container" style="max-width: 420px; margin-top: 12vh">
<h1 class="h4 mb-3">{{ title }}</h1>
{% if message %}<div class="alert alert-{{ level }}" role="alert" id="login-message">{{ message }}</div>{% endif %}
<form method="post" action="/login" class="card card-body shadow-sm" autocomplete="on">
  <input type="hidden" name="csrf_token" value="{{ csrf }}">
  <input type="hidden" name="next" value="{{ next }}">
  <label class="form-label" for="username">User name</label>
  <input class="form-control mb-2" id="username" name="username" autocomplete="username" required
         maxlength="64" autofocus>
  <label class="form-label" for="password">Password</label>
  <input class="form-control mb-3" id="password" name="password" type="password"
         autocomplete="current-password" required maxlength="1024">
  <button class="btn btn-primary" type="submit" id="login-submit">Sign in</button>
</form>
<p class="small text-muted mt-3">Patient data: every sign-in and every patient record opened is recorded.</p>
</main></body></html>"""

DENIED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>No access</title>
<link rel="stylesheet" href="/assets/01-bootstrap-5.3.8.min.css"></head>
<body><main class="container mt-5"><div class="alert alert-light border">
<h1 class="h4">No access</h1><p>Your role cannot open this page.</p>
<a class="btn btn-outline-primary" href="{{ home }}">Back</a></div></main></body></html>"""


def _login_page(message: str = "", level: str = "danger", status: int = 200, next_url: str = "") -> Response:
    html = render_template_string(
        LOGIN_PAGE,
        title=current_app.config.get("OUTCOMES_TITLE", "Sciatica outcomes"),
        message=message,
        level=level,
        csrf=_csrf_token(),
        next=next_url,
    )
    return Response(html, status=status, mimetype="text/html")


def _plain(status: int, text: str) -> Response:
    return Response(text, status=status, mimetype="text/plain")


# --- the hooks -------------------------------------------------------------------------------------------------------
class AuthLayer:
    def __init__(self, app: Dash, ctx: AppContext, config: AuthConfig) -> None:
        self.app = app
        self.ctx = ctx
        self.config = config
        self._callbacks: policy.CallbackMap | None = None
        self._csp: str | None = None

    @property
    def engine(self):
        return self.ctx.engine

    # callbacks belong to pages; built on first use, once every page is registered
    def callbacks(self) -> policy.CallbackMap:
        if self._callbacks is None:
            import dash

            layout = self.app.layout
            shell = layout() if callable(layout) else layout
            self._callbacks = policy.CallbackMap(dash.page_registry.values(), shell)
        return self._callbacks

    def _audit(self, action: str, user: store.User | None = None, **kw: Any) -> None:
        user = user or current_user()
        audit.record(
            self.engine,
            action,
            user_id=user.user_id if user and user.user_id else None,
            username=kw.pop("username", user.username if user else None),
            role=user.role if user else None,
            ip=client_ip(),
            request_id=g.get("request_id"),
            **kw,
        )

    # -- before every request
    def before(self) -> Response | None:
        g.request_id = secrets.token_hex(8)
        path = request.path
        if self.config.mode == "no_auth":
            if not is_loopback(urlsplit("//" + (request.host or "")).hostname or ""):
                return _plain(403, "This dashboard runs without login and answers on this computer only.")
            if request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin():
                return _plain(403, "Cross-site request refused.")
            g.auth_user = LOCAL_USER
            return self._authorize(LOCAL_USER, path)
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        user = self._session_user()
        if user is None:
            if request.method == "GET" and not path.startswith("/_"):
                nxt = request.full_path.rstrip("?") if path != "/" else ""
                return redirect("/login" + (f"?next={_quote(nxt)}" if nxt else ""), code=302)
            return _plain(401, "Sign in required.")
        g.auth_user = user
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token")
            if not (_csrf_ok(sent) and _same_origin()):
                return _plain(403, "Missing or invalid CSRF token.")
        return self._authorize(user, path)

    def _session_user(self) -> store.User | None:
        uid, version = session.get("uid"), session.get("ver")
        if not isinstance(uid, int) or not isinstance(version, int):
            return None
        user = store.get_user(self.engine, user_id=uid)
        if user is None or not user.is_active or user.session_version != version:
            session.clear()
            return None
        return user

    def _authorize(self, user: store.User, path: str) -> Response | None:
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        if path == CALLBACK_PATH:
            if (
                not request.is_json
            ):  # a cross-site form cannot send JSON without a CORS preflight we never answer
                return _plain(415, "Callbacks take JSON.")
            return self._authorize_callback(user)
        if path == "/logout":
            return None if request.method == "POST" else _plain(405, "Method not allowed.")
        if path in DASH_READ_PATHS:
            return None
        if path == AUDIT_CSV:
            return None if user.role == "admin" else self._deny(user, path)
        if path.startswith("/_"):  # any other internal route (MCP, health, ...) is not served
            return _plain(404, "Not found.")
        if policy.path_allowed(user.role, path):
            return None
        if path == "/":
            return redirect(policy.HOME.get(user.role, "/account"), code=302)
        return self._deny(user, path)

    def _deny(self, user: store.User, path: str) -> Response:
        key = policy.resolve_path(path) or "-"
        self._audit("access_denied", user, outcome="denied", target=key)
        log.info("access denied: role %s, page %s, request %s", user.role, key, g.request_id)
        html = render_template_string(DENIED_PAGE, home=policy.HOME.get(user.role, "/account"))
        return Response(html, status=403, mimetype="text/html")

    def _authorize_callback(self, user: store.User) -> Response | None:
        try:
            body = json.loads(request.get_data(cache=True) or b"{}")
        except ValueError:
            return _plain(400, "Bad request.")
        if not isinstance(body, dict):
            return _plain(400, "Bad request.")
        outputs = body.get("outputs")
        outputs = outputs if isinstance(outputs, list) else [outputs]
        out_ids = [policy.id_key(o.get("id")) for o in outputs if isinstance(o, dict)]
        cmap = self.callbacks()
        if not cmap.callback_allowed(user.role, out_ids):
            self._audit("access_denied", user, outcome="denied", target="callback:" + ",".join(out_ids)[:180])
            log.info("callback refused: role %s, outputs %s, request %s", user.role, out_ids, g.request_id)
            return _plain(403, "Forbidden.")
        inputs = [i for i in body.get("inputs") or [] if isinstance(i, dict)]
        inputs += [s for s in body.get("state") or [] if isinstance(s, dict)]
        if PATIENT_VIEW_OUTPUT in out_ids:
            pid = next((i.get("value") for i in inputs if i.get("id") == PATIENT_VIEW_INPUT), None)
            if isinstance(pid, str) and pid:
                self._audit("patient_view", user, outcome=self._visible(pid), target=pid)
        downloads = sorted(cmap.downloads.intersection(out_ids))
        if downloads:
            self._audit("download", user, target=",".join(downloads)[:200], detail={"inputs": _brief(inputs)})
        return None

    def _visible(self, patient_id: str) -> str:
        q = select(patients.c.patient_id).where(
            patients.c.patient_id == patient_id, scope_clause(session_scope(), patients)
        )
        with self.engine.connect() as conn:
            return "ok" if conn.execute(q).first() else "not_found"

    # -- after every request
    def after(self, response: Response) -> Response:
        user = current_user()
        if user is not None and self.config.login and session.get("csrf"):
            token = session["csrf"]
            if request.cookies.get(CSRF_COOKIE) != token:
                response.set_cookie(
                    CSRF_COOKIE,
                    token,
                    httponly=False,  # the renderer reads it; it is worthless without the HttpOnly session
                    samesite="Strict",
                    secure=self.app.server.session_interface.get_cookie_secure(self.app.server),
                    path="/",
                )
        return response

    # -- routes
    def login(self) -> Response:
        if not self.config.login:
            return redirect("/", code=302)
        if request.method == "GET":
            user = self._session_user()
            if user is not None:
                return redirect(_safe_next(request.args.get("next"), user.role), code=302)
            return _login_page(next_url=request.args.get("next", "")[:500])
        next_url = (request.form.get("next") or "")[:500]
        if not (_csrf_ok(request.form.get("csrf_token")) and _same_origin()):
            session.pop("csrf", None)
            return _login_page("The form expired; please sign in again.", "warning", 400, next_url)
        username = (request.form.get("username") or "").strip()[:64]
        password = request.form.get("password") or ""
        verdict = throttle.check(self.engine, username, client_ip(), self.config.throttle)
        if not verdict.allowed:
            self._audit(
                "login_failed", None, outcome="locked", username=username, detail={"by": verdict.reason}
            )
            log.warning("login refused: too many failures (%s), request %s", verdict.reason, g.request_id)
            minutes = max(1, round(verdict.retry_after_s / 60))
            resp = _login_page(
                f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
                status=429,
                next_url=next_url,
            )
            resp.headers["Retry-After"] = str(verdict.retry_after_s)
            return resp
        user = store.authenticate(self.engine, username, password)
        if user is None:
            self._audit("login_failed", None, outcome="failed", username=username)
            log.info("failed sign-in, request %s", g.request_id)
            return _login_page("Invalid user name or password.", status=401, next_url=next_url)
        session.clear()
        session.permanent = True
        session.update(uid=user.user_id, ver=user.session_version, csrf=secrets.token_urlsafe(32))
        g.auth_user = user
        self._audit("login", user)
        log.info("sign-in: user %s (%s), request %s", user.user_id, user.role, g.request_id)
        return redirect(_safe_next(next_url, user.role), code=302)

    def logout(self) -> Response:
        user = current_user()
        if user is not None and user.user_id:
            store.bump_session(self.engine, user.user_id)
            self._audit("logout", user)
        session.clear()
        response = redirect("/login", code=302)
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    def audit_csv(self) -> Response:
        filters = audit_filters_from(request.args)
        df = audit.query(self.engine, filters)
        self._audit(
            "download", target="audit_log.csv", detail={"filters": _filters_json(filters), "rows": len(df)}
        )
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        return Response(
            audit.to_csv(df),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="audit-log-{stamp}.csv"'},
        )


AUDIT_CSV = "/admin/audit.csv"


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def _brief(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {policy.id_key(i.get("id")): str(i.get("value"))[:100] for i in inputs[:10]}


def audit_filters_from(args) -> audit.AuditFilters:
    def day(name: str) -> dt.date | None:
        try:
            return dt.date.fromisoformat(args.get(name, "")[:10]) if args.get(name) else None
        except ValueError:
            return None

    def text(name: str) -> str | None:
        value = (args.get(name) or "").strip()[:200]
        return value or None

    action = text("action")
    return audit.AuditFilters(
        username=text("username"),
        action=action if action in audit.ACTIONS else None,
        target=text("target"),
        ip=text("ip"),
        start=day("start"),
        end=day("end"),
    )


def _filters_json(f: audit.AuditFilters) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in f.__dict__.items() if v}


# --- headers ---------------------------------------------------------------------------------------------------------
def content_security_policy(script_hashes: list[str]) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' " + " ".join(script_hashes),
            # Plotly, dash-ag-grid and React set inline style attributes: styles stay inline-able, scripts do not.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def install_headers(app: Dash) -> None:
    """Security headers on every response, for every mode (also an app built without login)."""
    server = app.server
    cache: dict[str, str] = {}

    def headers(response: Response) -> Response:
        if "csp" not in cache or len(cache.get("n", "")) != len(app._inline_scripts):
            cache["csp"] = content_security_policy(app.csp_hashes())
            cache["n"] = "x" * len(app._inline_scripts)
        h = response.headers
        h.setdefault("Content-Security-Policy", cache["csp"])
        h["X-Frame-Options"] = "DENY"
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
        if request.is_secure:
            h["Strict-Transport-Security"] = "max-age=31536000"
        if not request.path.startswith(PUBLIC_PREFIXES):
            h["Cache-Control"] = "no-store"
        if g.get("request_id"):
            h["X-Request-ID"] = g.request_id
        return response

    server.after_request(headers)


def install_hardening(app: Dash, max_content_length: int = 1024 * 1024) -> None:
    """What every app gets, with or without login: headers, a request size limit, PHI-free logs."""
    app.server.config["MAX_CONTENT_LENGTH"] = max_content_length
    install_headers(app)
    logs.install_log_filter()
    logs.install_error_logging(app.server)


def install(app: Dash, ctx: AppContext, config: AuthConfig) -> AuthLayer:
    """Put `app` behind the login layer described by `config` (see the module docstring)."""
    from dashboard.auth import pages

    server = app.server
    if config.trust_proxy:
        server.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            server.wsgi_app, x_for=config.trust_proxy, x_proto=config.trust_proxy, x_host=config.trust_proxy
        )
    server.secret_key = config.secret_key
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=config.session_hours),
        OUTCOMES_AUTH=config,
        OUTCOMES_TITLE=app.title,
    )
    server.session_interface = _SessionInterface(config.cookie_secure)
    layer = AuthLayer(app, ctx, config)
    server.before_request(layer.before)
    server.after_request(layer.after)
    server.add_url_rule("/login", "outcomes_login", layer.login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "outcomes_logout", layer.logout, methods=["POST"])
    server.add_url_rule(AUDIT_CSV, "outcomes_audit_csv", layer.audit_csv, methods=["GET"])
    pages.register(app, ctx, config)
    install_hardening(app, config.max_content_length)
    server.config["OUTCOMES_AUTH_LAYER"] = layer
    if config.mode == "no_auth":
        log.warning("dashboard running WITHOUT LOGIN: one local viewer, every clinic visible")
    return layer
