"""Build a registered objective from Python, without YAML: `build_objective("dpo", beta=0.1)`."""

from __future__ import annotations

import dataclasses
from typing import Any

from mmpref.errors import ConfigError, did_you_mean
from mmpref.objectives.base import Objective
from mmpref.registry import OBJECTIVES


def build_objective(name: str, **overrides: Any) -> Objective:
    """The objective registered as `name`, its paper defaults updated with `overrides`.

    Raises a UserError (ConfigError) for an unknown name or parameter, with a did-you-mean, and for
    values out of range, the same checks a YAML config gets.
    """
    entry = OBJECTIVES.get(name)
    if entry.params is None:
        if overrides:
            raise ConfigError(f"objective '{name}' takes no parameters; got {', '.join(sorted(overrides))}.")
        return entry.obj()
    known = [f.name for f in dataclasses.fields(entry.params) if f.init]
    for key in overrides:
        if key not in known:
            raise ConfigError(
                f"objective '{name}' has no parameter '{key}'.{did_you_mean(key, known)} "
                f"Its parameters: {', '.join(known)}."
            )
    params = entry.params(**overrides)
    check = getattr(params, "check", None)
    if callable(check):
        try:
            check()
        except ValueError as err:
            raise ConfigError(f"objective '{name}': {err}") from None
    return entry.obj(params)
