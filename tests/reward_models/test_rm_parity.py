"""Formula parity: each scorer, loaded through its real loader from the official on-disk layout,
matches an independent computation written here from the papers' reference code."""

from __future__ import annotations

import json
import math

import numpy as np
import torch
import torch.nn.functional as F
from rm_helpers import PROMPTS, smooth_images
from torchvision.transforms import functional as TF

from mmpref.reward_models import build_scorer

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a, b, dim=-1)


def openai_clip_transform(image, size: int) -> torch.Tensor:
    """The OpenAI CLIP / BLIP evaluation transform, as torchvision composes it in the reference repos."""
    image = TF.resize(image, size, interpolation=TF.InterpolationMode.BICUBIC)
    image = TF.center_crop(image, size)
    return TF.normalize(TF.to_tensor(image.convert("RGB")), CLIP_MEAN, CLIP_STD)


def test_pickscore_is_logit_scale_exp_times_cosine(scorers, clip_dir):
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    images = smooth_images(4, 45, 61)
    model = CLIPModel.from_pretrained(clip_dir).eval()
    processor = CLIPImageProcessorPil.from_pretrained(clip_dir)
    tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    with torch.no_grad():
        image = model.get_image_features(pixel_values=processor(images=images, return_tensors="pt").pixel_values)
        text = model.get_text_features(**tokenizer(PROMPTS[:4], padding=True, return_tensors="pt"))
        expected = model.logit_scale.exp() * cosine(image.pooler_output, text.pooler_output)
    assert math.isclose(model.logit_scale.exp().item(), 100.0, rel_tol=1e-5)  # PickScore_v1's scale
    torch.testing.assert_close(scorers["pickscore"].score(images, PROMPTS[:4]), expected, rtol=1e-5, atol=1e-5)


def test_hps_is_raw_cosine_with_resize_longest_and_pad(scorers, hps_files):
    from open_clip.model import CLIP

    config, checkpoint = hps_files
    model = CLIP(**json.load(open(config))["model_cfg"]).eval()
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    import open_clip

    tokenizer = open_clip.SimpleTokenizer(context_length=77)
    images = smooth_images(3, 40, 64) + smooth_images(1, 70, 30, seed=1)
    expected = []
    for image, prompt in zip(images, PROMPTS):
        x = TF.to_tensor(image)  # HPS: ToTensor, then ResizeMaxSize on the tensor, then Normalize
        h, w = x.shape[1:]
        scale = 32 / max(h, w)
        nh, nw = round(h * scale), round(w * scale)
        x = TF.resize(x, [nh, nw], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        ph, pw = 32 - nh, 32 - nw
        x = TF.pad(x, [pw // 2, ph // 2, pw - pw // 2, ph - ph // 2], fill=0)
        x = TF.normalize(x, CLIP_MEAN, CLIP_STD)
        with torch.no_grad():
            image_features, text_features, _ = model(x[None], tokenizer([prompt]))
        expected.append((image_features @ text_features.T).diagonal())
    torch.testing.assert_close(scorers["hpsv2.1"].score(images, PROMPTS[:4]), torch.cat(expected),
                               rtol=1e-5, atol=1e-6)


def test_clip_score_is_100_times_clamped_cosine(scorers, clip_dir):
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    images = smooth_images(8, 32, 40)
    model = CLIPModel.from_pretrained(clip_dir).eval()
    processor = CLIPImageProcessorPil.from_pretrained(clip_dir)
    tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    with torch.no_grad():
        image = model.get_image_features(pixel_values=processor(images=images, return_tensors="pt").pixel_values)
        text = model.get_text_features(**tokenizer(PROMPTS, padding=True, return_tensors="pt"))
    expected = torch.clamp(100 * cosine(image.pooler_output, text.pooler_output), min=0)
    got = scorers["clip_score"].score(images, PROMPTS)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert (got == 0).any() and (got > 0).any()  # the clamp is exercised on the random model


def test_aesthetic_mlp_on_l2_normalised_clip_embedding(scorers, clip_dir, aesthetic_file):
    from transformers import CLIPModel

    images = smooth_images(4, 48, 36)
    model = CLIPModel.from_pretrained(clip_dir).eval()
    pixels = torch.stack([openai_clip_transform(im, 32) for im in images])
    with torch.no_grad():
        embeds = model.get_image_features(pixel_values=pixels).pooler_output
    x = embeds / embeds.norm(dim=-1, keepdim=True)
    sd = torch.load(aesthetic_file, weights_only=True)
    for index in (0, 2, 4, 6, 7):  # linear layers only: the reference MLP has no activations
        x = x @ sd[f"layers.{index}.weight"].T + sd[f"layers.{index}.bias"]
    torch.testing.assert_close(scorers["aesthetic"].score(images), x.squeeze(-1), rtol=1e-5, atol=1e-6)


def _layer_norm(x, sd, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"], eps)


def _linear(x, sd, prefix):
    return x @ sd[prefix + ".weight"].T + sd[prefix + ".bias"]


def _attention(q, k, v, heads, mask=None):
    b, n, d = q.shape
    split = [t.reshape(b, t.shape[1], heads, d // heads).transpose(1, 2) for t in (q, k, v)]
    scores = split[0] @ split[1].transpose(-1, -2) / math.sqrt(d // heads)
    if mask is not None:
        scores = scores + mask
    return (scores.softmax(-1) @ split[2]).transpose(1, 2).reshape(b, n, d)


def reference_imagereward(sd, pixels, input_ids, attention_mask, heads=2):
    """BLIP ViT (timm) + med BERT with cross-attention + MLP, written from the official module code."""
    v, t = "blip.visual_encoder", "blip.text_encoder"
    patch = sd[f"{v}.patch_embed.proj.weight"]
    x = F.conv2d(pixels, patch, sd[f"{v}.patch_embed.proj.bias"], stride=patch.shape[-1]).flatten(2).transpose(1, 2)
    x = torch.cat([sd[f"{v}.cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + sd[f"{v}.pos_embed"]
    depth = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith(f"{v}.blocks."))
    for i in range(depth):
        b = f"{v}.blocks.{i}"
        h = _layer_norm(x, sd, f"{b}.norm1", 1e-6)
        q, k, vv = _linear(h, sd, f"{b}.attn.qkv").chunk(3, dim=-1)
        x = x + _linear(_attention(q, k, vv, heads), sd, f"{b}.attn.proj")
        h = _layer_norm(x, sd, f"{b}.norm2", 1e-6)
        x = x + _linear(F.gelu(_linear(h, sd, f"{b}.mlp.fc1")), sd, f"{b}.mlp.fc2")
    image = _layer_norm(x, sd, f"{v}.norm", 1e-6)

    length = input_ids.shape[1]
    h = sd[f"{t}.embeddings.word_embeddings.weight"][input_ids] + sd[f"{t}.embeddings.position_embeddings.weight"][:length]
    h = _layer_norm(h, sd, f"{t}.embeddings.LayerNorm", 1e-12)
    mask = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
    layers = 1 + max(int(k.split(".")[4]) for k in sd if k.startswith(f"{t}.encoder.layer."))
    for i in range(layers):
        b = f"{t}.encoder.layer.{i}"
        for part, keys, m in (("attention", h, mask), ("crossattention", image, None)):
            q = _linear(h, sd, f"{b}.{part}.self.query")
            k, vv = _linear(keys, sd, f"{b}.{part}.self.key"), _linear(keys, sd, f"{b}.{part}.self.value")
            out = _linear(_attention(q, k, vv, heads, m), sd, f"{b}.{part}.output.dense")
            h = _layer_norm(out + h, sd, f"{b}.{part}.output.LayerNorm", 1e-12)
        inner = F.gelu(_linear(h, sd, f"{b}.intermediate.dense"))
        h = _layer_norm(_linear(inner, sd, f"{b}.output.dense") + h, sd, f"{b}.output.LayerNorm", 1e-12)
    x = h[:, 0]
    for index in (0, 2, 4, 6, 7):
        x = _linear(x, sd, f"mlp.layers.{index}")
    return x.squeeze(-1)


def test_imagereward_matches_reference_blip_and_official_normalisation(scorers, imagereward_files):
    from transformers import BertTokenizer

    images = smooth_images(3, 50, 40)
    sd = torch.load(imagereward_files["weights"], weights_only=True)
    tokenizer = BertTokenizer.from_pretrained(imagereward_files["tokenizer"])
    tokens = tokenizer(PROMPTS[:3], padding="max_length", truncation=True, max_length=35, return_tensors="pt")
    pixels = torch.stack([openai_clip_transform(im, 32) for im in images])
    raw = reference_imagereward(sd, pixels, tokens.input_ids, tokens.attention_mask)
    expected = (raw - 0.16717362830052426) / 1.0333394966054072
    torch.testing.assert_close(scorers["imagereward"].score(images, PROMPTS[:3]), expected, rtol=1e-4, atol=1e-5)


def test_clap_uses_the_audio_logit_scale(clap_dir):
    from transformers import AutoProcessor, ClapModel

    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (3000, 5000, 8000)]
    texts = ["a dog barks", "rain on a roof", "a dog barks"]
    model = ClapModel.from_pretrained(clap_dir).eval()
    with torch.no_grad():
        model.logit_scale_a.fill_(math.log(20.0))  # distinct from logit_scale_t, so using the wrong one fails
    processor = AutoProcessor.from_pretrained(clap_dir)
    feats = processor.feature_extractor(waves, sampling_rate=8000, return_tensors="pt")
    with torch.no_grad():
        audio = model.get_audio_features(**feats).pooler_output
        text = model.get_text_features(**processor.tokenizer(texts, padding=True, return_tensors="pt")).pooler_output
    cos = cosine(audio, text)
    from mmpref.reward_models.clap import ClapScorer

    scaled = ClapScorer(model, processor, sample_rate=8000)
    torch.testing.assert_close(scaled.score(waves, texts), 20.0 * cos, rtol=1e-5, atol=1e-5)
    raw = ClapScorer(model, processor, sample_rate=8000, scaled=False)
    torch.testing.assert_close(raw.score(waves, texts), cos, rtol=1e-5, atol=1e-6)
    # the registered builder loads the same directory; a (waveform, rate) pair is resampled to 8 kHz first
    built = build_scorer({"name": "clap", "weights": clap_dir, "sample_rate": 8000})
    assert built.modality == "audio" and not built.differentiable
    resampled = built.score([(np.repeat(waves[2], 2), 16000)], ["a dog barks"])
    assert torch.isfinite(resampled).all()


def test_resampling_is_band_limited_and_exact_in_length():
    from mmpref.reward_models.audio import resample

    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    up = resample(tone, 16000, 48000)
    assert len(up) == 48000
    reference = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)
    assert np.abs(up[300:-300] - reference[300:-300]).max() < 2e-3
    assert len(resample(tone, 16000, 44100)) == 44100
