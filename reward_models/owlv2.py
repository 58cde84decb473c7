"""OWLv2 (Minderer et al. 2023) open-vocabulary detection through transformers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmpref.registry import REWARD_MODELS

from .detection import Detection, DetectorParams, DetectorScorer, center_to_corners
from .images import to_pil
from .weights import model_and_processor


@dataclass
class OwlV2Params(DetectorParams):
    weights: str = "google/owlv2-base-patch16-ensemble"
    threshold: float = 0.1
    batch_size: int = 4


class OwlV2Scorer(DetectorScorer):
    """OWLv2: each image patch predicts a box and a logit per text query; phrase confidence = sigmoid.

    Scale: object presence / count agreement in [0, 1] (see `object_agreement`); 0.1 is the
    confidence threshold of the transformers examples. OWLv2 pads images to a square before
    resizing, so boxes are mapped back through the padded square and clipped to the image.
    """

    name = "owlv2"

    def __init__(self, model: Any, processor: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = self._freeze(model)
        self.processor = processor

    def _detect_batch(self, images: list[Any], phrases: list[list[str]]) -> list[list[Detection]]:
        pils = [to_pil(im) for im in images]
        queries = [p if p else [" "] for p in phrases]
        inputs = self.processor(text=queries, images=pils, return_tensors="pt", padding="max_length",
                                truncation=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        out = self.model(**inputs)
        probs = out.logits.float().sigmoid()  # [B, patches, width]
        results = []
        for i, (image, names) in enumerate(zip(pils, phrases)):
            side = max(image.size)  # boxes are relative to the zero-padded square
            boxes = center_to_corners(out.pred_boxes[i].float()) * side
            results.append(self._finish(boxes, probs[i, :, :len(names)], names, image.size[0], image.size[1]))
        return results


@REWARD_MODELS.register("owlv2", summary="OWLv2 detector: boxes for the prompt's objects; presence/count score",
                        params=OwlV2Params)
def build(params: OwlV2Params, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> OwlV2Scorer:
    from transformers import Owlv2ForObjectDetection

    model, processor = model_and_processor(Owlv2ForObjectDetection, params.weights, scorer="owlv2")
    return OwlV2Scorer(model, processor, threshold=params.threshold, nms_iou=params.nms_iou, mode=params.mode,
                       device=device, dtype=dtype, batch_size=params.batch_size)
