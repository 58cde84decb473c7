"""Grounding DINO (Liu et al. 2023) open-vocabulary detection through transformers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmpref.registry import REWARD_MODELS

from .detection import Detection, DetectorParams, DetectorScorer, center_to_corners
from .images import to_pil
from .weights import model_and_processor


@dataclass
class GroundingDinoParams(DetectorParams):
    weights: str = "IDEA-Research/grounding-dino-tiny"
    threshold: float = 0.35  # the reference box threshold
    batch_size: int = 4


def phrase_text(phrases: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The reference caption format 'red circle. dog.' and each phrase's character span in it."""
    spans, parts, pos = [], [], 0
    for phrase in phrases:
        spans.append((pos, pos + len(phrase)))
        parts.append(phrase + ".")
        pos += len(phrase) + 2
    return " ".join(parts), spans


class GroundingDinoScorer(DetectorScorer):
    """Grounding DINO: 900 queries score every caption token; phrase confidence = max sigmoid over its tokens.

    Scale: object presence / count agreement in [0, 1] (see `object_agreement`). Each query becomes
    a box labelled with its best phrase when that confidence reaches `threshold` (0.35, the
    reference box threshold); the reference's separate text threshold is not needed because
    labels come from whole phrases, not from decoding tokens.
    """

    name = "grounding_dino"

    def __init__(self, model: Any, processor: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = self._freeze(model)
        self.processor = processor

    def _detect_batch(self, images: list[Any], phrases: list[list[str]]) -> list[list[Detection]]:
        # Images of one size run together: padding a smaller image to a larger one's size changes its
        # backbone features, so mixed sizes would make detections depend on the batch.
        pils = [to_pil(im) for im in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(pils):
            groups.setdefault(image.size, []).append(index)
        results: list[list[Detection]] = [[] for _ in pils]
        for indices in groups.values():
            found = self._detect_same_size([pils[i] for i in indices], [phrases[i] for i in indices])
            for index, detections in zip(indices, found):
                results[index] = detections
        return results

    def _detect_same_size(self, pils: list[Any], phrases: list[list[str]]) -> list[list[Detection]]:
        captions = [phrase_text([p.lower() for p in names] or ["object"]) for names in phrases]
        max_len = int(self.model.config.max_text_len)
        text = self.processor.tokenizer([c for c, _ in captions], padding=True, truncation=True, max_length=max_len,
                                        return_offsets_mapping=True, return_tensors="pt")
        offsets = text.pop("offset_mapping")
        vision = self.processor.image_processor(pils, return_tensors="pt")
        inputs = {**{k: v.to(self.device) for k, v in text.items()},
                  "pixel_values": vision["pixel_values"].to(self.device, self.dtype)}
        if "pixel_mask" in vision:
            inputs["pixel_mask"] = vision["pixel_mask"].to(self.device)
        out = self.model(**inputs)
        results = []
        for i, (image, names) in enumerate(zip(pils, phrases)):
            logits = out.logits[i].float()  # [queries, max_text_len]
            columns = []
            for start, end in captions[i][1][:len(names)]:
                tokens = [t for t, (s, e) in enumerate(offsets[i].tolist()) if e > s and s >= start and e <= end]
                columns.append(logits[:, tokens].sigmoid().max(dim=-1).values if tokens
                               else torch.zeros(logits.shape[0], device=logits.device))
            width, height = image.size
            probs = torch.stack(columns, dim=-1) if columns else logits[:, :0]
            boxes = center_to_corners(out.pred_boxes[i].float()) * torch.tensor(
                [width, height, width, height], dtype=torch.float32, device=logits.device)
            results.append(self._finish(boxes, probs, names, width, height))
        return results


@REWARD_MODELS.register("grounding_dino", summary="Grounding DINO detector: boxes for prompt objects; "
                        "presence/count score", params=GroundingDinoParams)
def build(params: GroundingDinoParams, device: str | torch.device = "cpu",
          dtype: torch.dtype = torch.float32) -> GroundingDinoScorer:
    from transformers import GroundingDinoForObjectDetection

    model, processor = model_and_processor(GroundingDinoForObjectDetection, params.weights, scorer="grounding_dino")
    return GroundingDinoScorer(model, processor, threshold=params.threshold, nms_iou=params.nms_iou,
                               mode=params.mode, device=device, dtype=dtype, batch_size=params.batch_size)
