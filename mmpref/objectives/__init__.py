"""Preference objectives shared by every modality; each file registers one loss family.

Objectives are pure functions of per-sample log-likelihood estimates (see `base.py`), so the same
`dpo` serves SDXL, Tango 2 and an MLLM. Adding a family is one file plus one line in the import below.
"""

# Registry lines: one imported family file per line (importing it registers its names).
from mmpref.objectives import (  # noqa: F401
    bco,  # bco
    kto,  # kto
    npo,  # npo
    pairwise,  # dpo ipo hinge sympo cdpo rdpo rpo soft_dpo lcpo
    reference_free,  # simpo cpo
    sft,  # sft
)
from mmpref.objectives.base import Objective, ObjectiveOutput, PairwiseInputs, UnpairedInputs
from mmpref.objectives.factory import build_objective

__all__ = ["Objective", "ObjectiveOutput", "PairwiseInputs", "UnpairedInputs", "build_objective"]
