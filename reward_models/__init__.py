"""Reward models and detectors as swappable, batched scorers, installed as mmpref.reward_models."""
