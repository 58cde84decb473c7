"""Training methods: each registers a runner and the config dataclass it reads."""
from mmpref.methods import (
    bandit,  # noqa: F401
    preference,  # noqa: F401
)
