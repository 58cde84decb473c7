"""The shapes world: prompts whose satisfaction is computable from pixels, and a small base model.

Prompts ("two red circles", "a blue square left of a yellow triangle") come from a small grammar split
into training and held-out scenes; a renderer draws what they should look like; a ground-truth reward
judges any 32x32 image against a prompt; two imperfect detectors stand in for real reward models; and a
tiny StableDiffusionPipeline trained on renders (scripts/train_shapes_base.py) ships with the package.
Heavy libraries (torch, diffusers) load only when the base model is used.
"""

from mmpref.sandbox.shapes.base import DEFAULT_SAMPLER, load_shapes_base, shapes_base_info, shapes_base_path
from mmpref.sandbox.shapes.detectors import color_blob_detector, shape_detector
from mmpref.sandbox.shapes.grammar import (
    COLORS,
    FORMS,
    RELATIONS,
    SHAPES,
    Prompt,
    PromptError,
    ShapeGroup,
    all_prompts,
    near_misses,
    parse_prompt,
)
from mmpref.sandbox.shapes.render import PALETTE, render, render_batch
from mmpref.sandbox.shapes.split import PromptSplit, split_prompts
from mmpref.sandbox.shapes.truth import Judgement, judge, truth_correct, truth_scores

__all__ = [
    "COLORS",
    "DEFAULT_SAMPLER",
    "FORMS",
    "PALETTE",
    "RELATIONS",
    "SHAPES",
    "Judgement",
    "Prompt",
    "PromptError",
    "PromptSplit",
    "ShapeGroup",
    "all_prompts",
    "color_blob_detector",
    "judge",
    "load_shapes_base",
    "near_misses",
    "parse_prompt",
    "render",
    "render_batch",
    "shape_detector",
    "shapes_base_info",
    "shapes_base_path",
    "split_prompts",
    "truth_correct",
    "truth_scores",
]
