"""Training methods: each registers a runner and the config dataclass it reads."""
