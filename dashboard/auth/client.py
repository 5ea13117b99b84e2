"""Sign in to a running dashboard from a script (smoke tests, benchmarks): an urllib opener with the session
cookie, which also sends the CSRF header Dash's renderer would send."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class SignedInOpener:
    def __init__(self, base: str, username: str, password: str, timeout: float = 10) -> None:
        self.base, self.timeout = base.rstrip("/"), timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        with self.opener.open(self.base + "/login", timeout=timeout) as resp:
            token = CSRF_FIELD.search(resp.read().decode("utf-8", "replace")).group(1)
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrf_token": token}
        ).encode()
        with self.opener.open(self.base + "/login", data=form, timeout=timeout) as resp:
            if urllib.parse.urlsplit(resp.geturl()).path == "/login":
                raise PermissionError(f"sign-in as {username!r} failed")

    def csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "_csrf_token"), "")

    def get(self, path: str) -> tuple[int, str]:
        with self.opener.open(self.base + path, timeout=self.timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")

    def post_json(self, path: str, body: bytes) -> tuple[int, str]:
        req = urllib.request.Request(
            self.base + path,
            data=body,
            headers={"Content-Type": "application/json", "X-CSRFToken": self.csrf(), "Origin": self.base},
        )
        with self.opener.open(req, timeout=self.timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
