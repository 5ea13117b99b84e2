"""Password hashing with argon2id (argon2-cffi, RFC 9106 parameters), and random passwords for new users."""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; a limit keeps a login request from hashing megabytes


class PasswordError(ValueError):
    pass


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"a password may have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher().hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches. Without a stored hash (unknown user) a dummy hash is checked anyway, so an
    unknown user name takes as long as a wrong password."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def generate_password() -> str:
    """A random password of 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)
