"""Errors a user can cause and fix themselves.

The CLI prints a `UserError` as one or two lines and exits with status 2; anything else is a bug in
mmpref and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A problem with the user's input (file, config, data) that they can fix; message says how."""

    exit_code = 2


class ConfigError(UserError):
    """A config file or override that does not validate."""


class DataError(UserError):
    """A dataset that cannot be used (missing column, too many corrupt rows, ...)."""


class NotAvailableYet(UserError):
    """A command or component whose machinery is planned but not implemented in this version."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
