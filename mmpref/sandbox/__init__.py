"""Synthetic worlds whose ground-truth reward is computable, so a method can be shown to really align a model."""
