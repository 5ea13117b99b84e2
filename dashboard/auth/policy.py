"""Which role may open which page and trigger which callback.

Pages are named by their registered path (or path template). A callback belongs to the page whose layout holds its
outputs; outputs in the app shell (navbar, Dash's page router) belong to every signed-in user. A callback whose
outputs are in no known layout, and a page missing from `PAGE_ROLES`, are refused to everyone (fail closed): a new
page needs one line here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from dash import dcc

#: The no-auth mode's single local viewer (clinic-wide, no admin pages).
LOCAL = "local"
CLINICAL = frozenset({"therapist", "manager", LOCAL})
EVERYONE = frozenset({"therapist", "manager", "researcher", "admin", LOCAL})

PAGE_ROLES: dict[str, frozenset[str]] = {
    "/": CLINICAL,  # caseload
    "/patients/<patient_id>": CLINICAL,
    "/outcomes": frozenset({"manager", LOCAL}),
    "/cohorts": frozenset({"researcher", "manager", LOCAL}),  # managers: their clinics only
    "/account": EVERYONE,
    "/admin/users": frozenset({"admin"}),
    "/admin/etl": frozenset({"admin"}),
    "/admin/audit": frozenset({"admin"}),
    "/404": EVERYONE,
}
#: Where a role lands after signing in (and when it opens `/` without access to the caseload).
HOME = {"therapist": "/", "manager": "/", "researcher": "/cohorts", "admin": "/admin/audit", LOCAL: "/"}
SHELL = "*"
#: Dash's own page-routing components: the router only renders page skeletons, which check the role themselves.
DASH_PAGE_IDS = ("_pages_content", "_pages_location", "_pages_store", "_pages_dummy")


def page_key(page: dict[str, Any]) -> str:
    return page.get("path_template") or page["path"]


def page_roles(key: str) -> frozenset[str]:
    return PAGE_ROLES.get(key, frozenset())


def page_allowed(role: str, key: str) -> bool:
    return role in page_roles(key)


def resolve_path(path: str) -> str | None:
    """The registered page serving URL `path` (its key), or None when no page does (the not-found page)."""
    from dash._pages import _path_to_page

    page, _vars = _path_to_page(path.strip("/"))
    return page_key(page) if page else None


def path_allowed(role: str, path: str) -> bool:
    key = resolve_path(path)
    return True if key is None else page_allowed(role, key)


def id_key(component_id: Any) -> str:
    """A component id as a string; pattern-matching ids by their `type` (or the whole dict)."""
    if isinstance(component_id, dict):
        return str(component_id.get("type", json.dumps(component_id, sort_keys=True)))
    return str(component_id)


def _walk(layout: Any) -> Iterable[Any]:
    if layout is None:
        return
    if isinstance(layout, list | tuple):
        for item in layout:
            yield from _walk(item)
        return
    if hasattr(layout, "_traverse"):
        yield layout
        yield from layout._traverse()


def layout_ids(layout: Any) -> tuple[set[str], set[str]]:
    """Every component id in a layout, and those of `dcc.Download` components (audited as downloads)."""
    found, downloads = set(), set()
    for comp in _walk(layout):
        cid = getattr(comp, "id", None)
        if cid is None:
            continue
        found.add(id_key(cid))
        if isinstance(comp, dcc.Download):
            downloads.add(id_key(cid))
    return found, downloads


class CallbackMap:
    """Component id -> the pages whose layouts hold it, built from the page skeletons and the shell (layouts hold
    no data). An id on two pages may be used only by roles allowed on both."""

    def __init__(self, pages: Iterable[dict[str, Any]], shell: Any) -> None:
        self.owners: dict[str, set[str]] = {}
        self.downloads: set[str] = set()
        for page in pages:
            layout = page.get("layout")
            layout = getattr(layout, "auth_original", layout)
            try:
                tree = layout() if callable(layout) else layout
            except Exception:  # noqa: BLE001 - a layout that needs arguments: its callbacks stay refused
                continue
            ids, downloads = layout_ids(tree)
            self.downloads |= downloads
            for cid in ids:
                self.owners.setdefault(cid, set()).add(page_key(page))
        shell_ids, shell_downloads = layout_ids(shell)
        self.downloads |= shell_downloads
        for cid in (*shell_ids, *DASH_PAGE_IDS):
            self.owners[cid] = {SHELL}

    def callback_allowed(self, role: str, output_ids: Iterable[str]) -> bool:
        owners = [self.owners.get(cid) for cid in output_ids]
        if not owners or any(not o for o in owners):
            return False
        return all(key == SHELL or page_allowed(role, key) for o in owners for key in o)
