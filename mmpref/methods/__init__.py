"""Training methods: each registers a runner and the config dataclass it reads."""
from mmpref.methods import bandit  # noqa: F401
from mmpref.methods import preference  # noqa: F401
