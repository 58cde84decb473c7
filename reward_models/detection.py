"""Open-vocabulary detections and the object presence / count agreement score built on them.

Pipelines use the detections directly (SENTINEL-style hallucination checks, object-centric pair
building); as scorers, detectors report how well an image shows the objects its prompt names.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from mmpref.errors import UserError

from .base import Scorer, ScorerParams
from .phrases import ObjectPhrase, parse_objects


@dataclass(frozen=True)
class Detection:
    """One box in pixel coordinates of the input image (x0, y0, x1, y1), its phrase and confidence."""

    box: tuple[float, float, float, float]
    label: str
    score: float


@dataclass
class DetectorParams(ScorerParams):
    weights: str = ""
    threshold: float = 0.1  # minimum phrase confidence for a box to count
    nms_iou: float = 0.5  # per-phrase non-maximum suppression IoU (1.0 keeps every box)
    mode: Literal["count", "presence"] = "count"  # count: numbers must match; presence: each object seen once

    def check(self) -> None:
        super().check()
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {self.nms_iou}")


def object_agreement(detections: Sequence[Detection], objects: Sequence[ObjectPhrase], *,
                     threshold: float = 0.0, mode: str = "count") -> float:
    """Agreement in [0, 1] between detections and the prompt's objects: mean over objects of s_i.

    With n_i the number of detections labelled with object i's phrase and scoring >= threshold:
    - presence mode: s_i = 1 if n_i >= 1 else 0;
    - count mode, explicit number k_i ("two", "3"): s_i = max(0, 1 - |n_i - k_i| / k_i);
    - count mode, no explicit number ("a dog", "dogs"): s_i = 1 if n_i >= 1 else 0.
    No objects -> NaN (nothing to check).
    """
    if mode not in ("count", "presence"):
        raise UserError(f"detector mode must be 'count' or 'presence', got '{mode}'.")
    if not objects:
        return math.nan
    total = 0.0
    for obj in objects:
        n = sum(1 for d in detections if d.label == obj.phrase and d.score >= threshold)
        if mode == "count" and obj.exact:
            total += max(0.0, 1.0 - abs(n - obj.count) / obj.count)
        else:
            total += 1.0 if n >= 1 else 0.0
    return total / len(objects)


def nms_per_label(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float) -> torch.Tensor:
    """Indices kept by per-label non-maximum suppression, highest score first."""
    if boxes.numel() == 0 or iou >= 1.0:
        return torch.argsort(scores, descending=True)
    from torchvision.ops import batched_nms

    return batched_nms(boxes.float(), scores.float(), labels, iou)


def objects_for_prompt(prompt: str) -> list[ObjectPhrase]:
    """The prompt's object phrases; a prompt with none parsed is searched for as a whole."""
    objects = parse_objects(prompt)
    if not objects and prompt.strip():
        objects = [ObjectPhrase(prompt.strip().lower(), 1, False)]
    return objects


class DetectorScorer(Scorer):
    """Base of the open-vocabulary detectors: `detect` gives boxes, `score` the agreement above."""

    differentiable = False
    scale = "object presence / count agreement in [0, 1]"

    def __init__(self, *, threshold: float = 0.1, nms_iou: float = 0.5, mode: str = "count", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in ("count", "presence"):
            raise UserError(f"detector mode must be 'count' or 'presence', got '{mode}'.")
        self.threshold, self.nms_iou, self.mode = threshold, nms_iou, mode

    def detect(self, images: Sequence[Any], queries: str | Sequence[str] | Sequence[Sequence[str]], *,
               batch_size: int | None = None) -> list[list[Detection]]:
        """Per-image detections of `queries`: prompts (objects parsed from each) or lists of phrases."""
        images = list(images)
        if isinstance(queries, str):
            queries = [queries] * len(images)
        if len(queries) != len(images):
            raise UserError(f"detect got {len(images)} images but {len(queries)} queries.")
        phrase_lists = [[o.phrase for o in objects_for_prompt(q)] if isinstance(q, str) else list(q)
                        for q in queries]
        size = int(batch_size or self.batch_size)
        out: list[list[Detection]] = []
        with torch.no_grad():
            for start in range(0, len(images), size):
                out.extend(self._detect_batch(images[start:start + size], phrase_lists[start:start + size]))
        return out

    def _score_batch(self, samples: list[Any], prompts: list[str]) -> torch.Tensor:
        objects = [objects_for_prompt(p) for p in prompts]
        detections = self._detect_batch(samples, [[o.phrase for o in objs] for objs in objects])
        return torch.tensor([object_agreement(d, o, threshold=self.threshold, mode=self.mode)
                             for d, o in zip(detections, objects)], dtype=torch.float32)

    def _finish(self, boxes: torch.Tensor, probs: torch.Tensor, phrases: list[str], width: int,
                height: int) -> list[Detection]:
        """Detections from xyxy pixel boxes [N, 4] and phrase probabilities [N, P]: threshold, NMS, sort."""
        if not phrases:
            return []
        scores, labels = probs.float().max(dim=-1)
        keep = scores >= self.threshold
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        boxes = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                             boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], dim=-1)
        order = nms_per_label(boxes, scores, labels, self.nms_iou)
        return [Detection(tuple(float(v) for v in boxes[i].tolist()), phrases[int(labels[i])], float(scores[i]))
                for i in order.tolist()]

    @abstractmethod
    def _detect_batch(self, images: list[Any], phrases: list[list[str]]) -> list[list[Detection]]:
        """Detections for one chunk of images, each with its own phrase list."""


def center_to_corners(boxes: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) -> (x0, y0, x1, y1)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
