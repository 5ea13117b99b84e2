"""The navbar offers each role only the pages it may open (server-side checks stay the real guard)."""

from __future__ import annotations

import pytest

from dashboard.app import NAV_PAGES, nav_links
from dashboard.auth import policy
from tests.auth.conftest import ROLE_USER, signed_in

EXPECTED = {
    "therapist": {"/"},
    "manager": {"/", "/outcomes", "/cohorts"},
    "researcher": {"/cohorts"},
    "admin": set(),
}


def test_no_login_shows_every_page():
    assert nav_links(None) == list(NAV_PAGES)
    assert {href for _, href in nav_links(policy.LOCAL)} == {href for _, href in NAV_PAGES}


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_nav_links_follow_page_roles(sqlite_auth_app, role):
    session = signed_in(sqlite_auth_app, ROLE_USER[role])
    layout = session.client.get("/_dash-layout").get_json()
    hrefs = set()

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "NavLink":
                hrefs.add(node["props"]["href"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(layout)
    assert hrefs == EXPECTED[role]


def test_researcher_signs_in_to_the_cohort_builder(sqlite_auth_app):
    assert policy.HOME["researcher"] == "/cohorts"
    assert policy.page_allowed("researcher", policy.HOME["researcher"])
