"""What a new password must be: long enough, and not one of the passwords attackers try first.

The list is the 30,000 most common passwords of public breaches that zxcvbn (Dropbox's
password-strength estimator, the ``zxcvbn`` package) ships as a frequency list; it is compared
without regard to case. Length follows NIST SP 800-63B's advice of a length floor plus a
blocklist, with no composition rules.
"""

from __future__ import annotations

from functools import cache

MIN_LENGTH = 10
MAX_LENGTH = 256


@cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be used, or None if it may."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    if password.lower() in _common_passwords() or password.strip().lower() in _common_passwords():
        return "this password is on the list of common passwords attackers try first"
    return None


def check_password(password: str) -> str:
    """``password`` itself if it may be used; ValueError saying why not otherwise (the form
    pydantic validators expect)."""
    problem = password_problem(password)
    if problem:
        raise ValueError(problem)
    return password
