"""Build a scorer from a config entry: a registered name, or `{name: ..., **params}`.

Parameters are checked against the scorer's dataclass here, so a typo in a YAML key or a CLI
`--param` fails with a did-you-mean instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

import torch

from mmpref.errors import UserError, did_you_mean
from mmpref.registry import REWARD_MODELS

from .base import Scorer

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """torch dtype from 'float32' / 'fp16' / 'bf16' / a torch.dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise UserError(f"unknown dtype '{dtype}'.{did_you_mean(key, _DTYPES)} Use float32, float16 or bfloat16.")
    return _DTYPES[key]


def _coerce(value: Any, annotation: Any, *, field: str, scorer: str) -> Any:
    """Convert CLI strings to the field's simple type; reject values of the wrong type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if value in allowed:
            return value
        raise UserError(f"parameter '{field}' of reward model '{scorer}' must be one of "
                        f"{', '.join(map(repr, allowed))}, got {value!r}.{did_you_mean(str(value), map(str, allowed))}")
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(value, bool):
            return value
    elif annotation in (int, float):
        if isinstance(value, bool):
            pass
        elif isinstance(value, (int, float)) and (annotation is float or float(value).is_integer()):
            return annotation(value)
        elif isinstance(value, str):
            try:
                return annotation(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif origin in (list, tuple):
        if isinstance(value, (list, tuple)):
            return list(value)
    elif origin is dict or annotation is dict:
        if isinstance(value, Mapping):
            return dict(value)
    else:
        return value
    kind = getattr(annotation, "__name__", str(annotation))
    raise UserError(f"parameter '{field}' of reward model '{scorer}' must be {kind}, got {value!r}.")


def make_params(name: str, params_cls: type | None, values: Mapping[str, Any]) -> Any:
    """An instance of the scorer's params dataclass; unknown keys are a UserError with a did-you-mean."""
    if params_cls is None:
        if values:
            raise UserError(f"reward model '{name}' takes no parameters; got {', '.join(sorted(values))}.")
        return None
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    hints = typing.get_type_hints(params_cls)
    for key in values:
        if key not in fields:
            raise UserError(f"reward model '{name}' has no parameter '{key}'.{did_you_mean(key, fields)} "
                            f"Its parameters: {', '.join(sorted(fields))}.")
    converted = {key: _coerce(value, hints[key], field=key, scorer=name) for key, value in values.items()}
    params = params_cls(**converted)
    check = getattr(params, "check", None)
    if callable(check):
        try:
            check()
        except ValueError as err:
            raise UserError(f"reward model '{name}': {err}") from None
    return params


def parse_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, params) from 'pickscore' or {'name': 'pickscore', 'batch_size': 8}."""
    if isinstance(spec, str):
        return spec.strip(), {}
    if isinstance(spec, Mapping):
        values = dict(spec)
        name = values.pop("name", None)
        if not isinstance(name, str) or not name:
            raise UserError(f"a reward model entry needs a 'name' key; got {dict(spec)!r}.")
        return name, values
    raise UserError(f"a reward model is a name or a mapping with 'name'; got {type(spec).__name__}.")


def build_scorer(spec: str | Mapping[str, Any] | Scorer | Any, device: str | torch.device = "cpu",
                 dtype: str | torch.dtype = torch.float32, **overrides: Any) -> Scorer:
    """The scorer that `spec` names, loaded on `device` in `dtype`; `overrides` update its params.

    `spec` is a registered name, a mapping `{name: ..., **params}`, a validated config `Component`
    (reward_models registry) or an already built Scorer (returned as is).
    """
    if isinstance(spec, Scorer):
        return spec
    if hasattr(spec, "registry") and hasattr(spec, "params") and hasattr(spec, "name"):  # a validated config Component
        entry = REWARD_MODELS.get(spec.name)
        params = spec.params
        if overrides:
            params = make_params(spec.name, entry.params, {**dataclasses.asdict(params), **overrides})
        return entry.obj(params, device=device, dtype=resolve_dtype(dtype))
    name, values = parse_spec(spec)
    values.update(overrides)
    entry = REWARD_MODELS.get(name)
    params = make_params(name, entry.params, values)
    return entry.obj(params, device=device, dtype=resolve_dtype(dtype))
