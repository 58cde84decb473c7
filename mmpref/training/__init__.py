"""The preference trainer: accelerate setup, the loop, checkpoint/resume, logging, validation, outputs.

Modality-free: everything model-specific goes through a `mmpref.adapters.base.PreferenceAdapter`, and
everything loss-specific through a `mmpref.objectives.base.Objective`.
"""
