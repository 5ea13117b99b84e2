"""docs/security.md cannot drift: every role, audit action, environment variable and users command is there."""

from pathlib import Path

import pytest

from dashboard.auth import audit, config, policy
from etl.cli import build_parser
from warehouse.schema import ROLES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [*ROLES, *audit.ACTIONS])
def test_roles_and_actions_are_documented(name):
    assert f"`{name}`" in DOC


@pytest.mark.parametrize("var", [config.SECRET_ENV, config.COOKIE_SECURE_ENV, config.TRUST_PROXY_ENV])
def test_environment_is_documented(var):
    assert f"`{var}`" in DOC


def test_users_commands_are_documented():
    parser = build_parser()
    users = parser._subparsers._group_actions[0].choices["users"]
    for name in users._subparsers._group_actions[0].choices:
        assert f"etl users {name}" in DOC, name


def test_pages_in_the_policy_are_documented():
    for path in policy.PAGE_ROLES:
        if path != "/404":
            assert f"`{path}`" in DOC, path
