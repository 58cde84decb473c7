"""Tiny random reward models written in each official on-disk layout, for offline tests and benchmarks.

Every builder writes files the way the real checkpoint is published (HF directory with config +
safetensors + processor files; open_clip state dict `.pt` for HPS; `.pth` state dict for the
aesthetic MLP; `ImageReward.pt` with the official key names), so tests load them back through the
real loaders. Nothing is downloaded: tokenizers get small vocabularies written here, and open_clip
uses the BPE file it ships. Not imported by `mmpref.reward_models` itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

CLIP_SPECIAL = ("<|startoftext|>", "<|endoftext|>")
BERT_WORDS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "a", "an", "the", "of", "and", "cat", "dog",
              "red", "blue", "circle", "square", "two", "three", "photo", "on", "table")


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP byte-level alphabet: 256 printable stand-ins for the byte values."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = keep[:], 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def write_clip_bpe(directory: str | Path) -> int:
    """A tiny CLIP BPE tokenizer (vocab.json + merges.txt); returns the vocabulary size (eos = size - 1)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chars = _bytes_to_unicode()
    merges = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("r", "e"), ("re", "d</w>")]
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + list(CLIP_SPECIAL)
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return len(tokens)


def write_roberta_bpe(directory: str | Path) -> int:
    """A tiny byte-level RoBERTa tokenizer (CLAP's text side); returns the vocabulary size."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + _bytes_to_unicode() + ["<mask>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return len(tokens)


def write_bert_vocab(directory: str | Path) -> int:
    """A tiny WordPiece vocab.txt (BERT / BLIP / Grounding DINO text side); returns its size."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    words = list(BERT_WORDS) + [chr(c) for c in range(ord("a"), ord("z") + 1) if chr(c) not in BERT_WORDS]
    words += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    (directory / "vocab.txt").write_text("\n".join(words) + "\n")
    return len(words)


def make_hf_clip(directory: str | Path, *, image_size: int = 32, patch_size: int = 8, width: int = 32,
                 layers: int = 2, projection_dim: int = 16, logit_scale: float = math.log(100.0), seed: int = 0,
                 intermediate: int | None = None, heads: int | None = None, text_width: int | None = None,
                 text_layers: int | None = None, text_heads: int | None = None) -> str:
    """A CLIPModel directory laid out like PickScore_v1 + its LAION processor (PIL CLIP processor).

    logit_scale defaults to ln(100), the released PickScore's value; sizes can be raised to
    ViT-B/32 (width 768, 12 layers, patch 32, 224 px) for benchmarks.
    """
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    directory = Path(directory)
    vocab = write_clip_bpe(directory)
    tokenizer = CLIPTokenizer.from_pretrained(str(directory), model_max_length=77)
    heads = heads or max(1, width // 16)
    intermediate = intermediate or 2 * width
    text_width = text_width or width
    config = CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=text_width, intermediate_size=intermediate * text_width // width,
                         num_hidden_layers=text_layers or layers, num_attention_heads=text_heads or heads,
                         max_position_embeddings=77, eos_token_id=vocab - 1, bos_token_id=vocab - 2,
                         pad_token_id=vocab - 1),
        vision_config=dict(hidden_size=width, intermediate_size=intermediate, num_hidden_layers=layers,
                           num_attention_heads=heads, image_size=image_size, patch_size=patch_size),
        projection_dim=projection_dim, logit_scale_init_value=logit_scale,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    CLIPImageProcessorPil(size={"shortest_edge": image_size},
                          crop_size={"height": image_size, "width": image_size}).save_pretrained(str(directory))
    return str(directory)


def tiny_open_clip_config(image_size: int = 32, width: int = 32, embed_dim: int = 16) -> dict[str, Any]:
    """An open_clip model config shaped like ViT-H-14's, scaled down (real 49408-token BPE vocabulary)."""
    return {"embed_dim": embed_dim,
            "vision_cfg": {"image_size": image_size, "layers": 2, "width": width, "head_width": 16, "patch_size": 8},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": width, "heads": 2, "layers": 2}}


def make_open_clip_checkpoint(directory: str | Path, filename: str = "HPS_v2.1_compressed.pt", *,
                              image_size: int = 32, seed: int = 0) -> tuple[str, str]:
    """(model config JSON, checkpoint) with the checkpoint saved as HPS does: {'state_dict': CLIP state dict}."""
    from open_clip.model import CLIP

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = tiny_open_clip_config(image_size)
    torch.manual_seed(seed)
    model = CLIP(**cfg)
    config_path, ckpt_path = directory / "open_clip_config.json", directory / filename
    config_path.write_text(json.dumps({"model_cfg": cfg}))
    torch.save({"state_dict": model.state_dict()}, ckpt_path)
    return str(config_path), str(ckpt_path)


def make_aesthetic_mlp(path: str | Path, input_size: int = 16, seed: int = 0) -> str:
    """The aesthetic predictor's `.pth`: an nn.Sequential state dict with keys layers.{0,2,4,6,7}."""
    from torch import nn

    torch.manual_seed(seed)
    dims = [input_size, 1024, 128, 64, 16, 1]
    sd = {}
    for index, (fan_in, fan_out) in zip((0, 2, 4, 6, 7), zip(dims[:-1], dims[1:])):
        layer = nn.Linear(fan_in, fan_out)
        sd[f"layers.{index}.weight"], sd[f"layers.{index}.bias"] = layer.weight.data, layer.bias.data
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return str(path)


def official_imagereward_state_dict(*, vision_width: int = 32, depth: int = 2, patch: int = 8, image_size: int = 32,
                                    text_width: int = 32, text_layers: int = 2, vocab: int = 64,
                                    max_positions: int = 40, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the key names and shapes of the official ImageReward.pt (BLIP ViT + med BERT)."""
    g = torch.Generator().manual_seed(seed)

    def w(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.05

    def ln(prefix: str, dim: int) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weight": 1.0 + w(dim), f"{prefix}.bias": w(dim)}

    def lin(prefix: str, fan_in: int, fan_out: int) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weight": w(fan_out, fan_in), f"{prefix}.bias": w(fan_out)}

    v, t = "blip.visual_encoder", "blip.text_encoder"
    n = (image_size // patch) ** 2 + 1
    sd = {f"{v}.cls_token": w(1, 1, vision_width), f"{v}.pos_embed": w(1, n, vision_width),
          f"{v}.patch_embed.proj.weight": w(vision_width, 3, patch, patch), f"{v}.patch_embed.proj.bias": w(vision_width)}
    for i in range(depth):
        b = f"{v}.blocks.{i}"
        sd |= ln(f"{b}.norm1", vision_width) | ln(f"{b}.norm2", vision_width)
        sd |= lin(f"{b}.attn.qkv", vision_width, 3 * vision_width) | lin(f"{b}.attn.proj", vision_width, vision_width)
        sd |= lin(f"{b}.mlp.fc1", vision_width, 4 * vision_width) | lin(f"{b}.mlp.fc2", 4 * vision_width, vision_width)
    sd |= ln(f"{v}.norm", vision_width)
    sd |= {f"{t}.embeddings.word_embeddings.weight": w(vocab, text_width),
           f"{t}.embeddings.position_embeddings.weight": w(max_positions, text_width),
           f"{t}.embeddings.position_ids": torch.arange(max_positions)[None]}
    sd |= ln(f"{t}.embeddings.LayerNorm", text_width)
    for i in range(text_layers):
        b = f"{t}.encoder.layer.{i}"
        for part, kv_in in (("attention", text_width), ("crossattention", vision_width)):
            sd |= lin(f"{b}.{part}.self.query", text_width, text_width)
            sd |= lin(f"{b}.{part}.self.key", kv_in, text_width) | lin(f"{b}.{part}.self.value", kv_in, text_width)
            sd |= lin(f"{b}.{part}.output.dense", text_width, text_width) | ln(f"{b}.{part}.output.LayerNorm", text_width)
        sd |= lin(f"{b}.intermediate.dense", text_width, 4 * text_width)
        sd |= lin(f"{b}.output.dense", 4 * text_width, text_width) | ln(f"{b}.output.LayerNorm", text_width)
    sd |= lin("blip.vision_proj", vision_width, 16) | lin("blip.text_proj", text_width, 16)
    for index, (fan_in, fan_out) in zip((0, 2, 4, 6, 7), [(text_width, 1024), (1024, 128), (128, 64), (64, 16),
                                                          (16, 1)]):  # head scaled like nn.Linear's init
        sd |= {f"mlp.layers.{index}.weight": torch.randn(fan_out, fan_in, generator=g) / fan_in ** 0.5,
               f"mlp.layers.{index}.bias": w(fan_out)}
    return sd


def make_imagereward(directory: str | Path, seed: int = 0) -> dict[str, Any]:
    """ImageReward.pt + med_config.json (official names) and a tiny BERT tokenizer directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = write_bert_vocab(directory / "tokenizer")
    sd = official_imagereward_state_dict(vocab=vocab + 2, seed=seed)  # + [DEC], [ENC] as in BLIP's tokenizer
    torch.save(sd, directory / "ImageReward.pt")
    med = {"architectures": ["BertModel"], "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
           "intermediate_size": 128, "max_position_embeddings": 40, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
           "vocab_size": vocab + 2, "encoder_width": 32, "add_cross_attention": True, "model_type": "bert",
           "pad_token_id": 0, "type_vocab_size": 2}
    (directory / "med_config.json").write_text(json.dumps(med))
    return {"weights": str(directory / "ImageReward.pt"), "tokenizer": str(directory / "tokenizer"),
            "vision_heads": 2}


def make_clap(directory: str | Path, seed: int = 0) -> str:
    """A ClapModel directory (config, safetensors, feature extractor at 8 kHz, tiny RoBERTa tokenizer)."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    directory = Path(directory)
    vocab = write_roberta_bpe(directory)
    tokenizer = RobertaTokenizer.from_pretrained(str(directory), model_max_length=32)
    config = ClapConfig(
        text_config=dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=40, projection_dim=16, pad_token_id=1,
                         bos_token_id=0, eos_token_id=2),
        audio_config=dict(window_size=4, num_mel_bins=16, spec_size=64, patch_size=2, patch_stride=2, hidden_size=32,
                          depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=16, projection_dim=16),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    ClapModel(config).save_pretrained(str(directory))
    extractor = ClapFeatureExtractor(feature_size=16, sampling_rate=8000, hop_length=160, max_length_s=1,
                                     fft_window_size=256, truncation="rand_trunc", padding="repeatpad",
                                     frequency_max=4000)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(str(directory))
    return str(directory)


def make_owlv2(directory: str | Path, seed: int = 0) -> str:
    """An Owlv2ForObjectDetection directory with its processor (64 px, tiny CLIP tokenizer)."""
    from transformers import (
        CLIPTokenizer,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    directory = Path(directory)
    vocab = write_clip_bpe(directory)
    tokenizer = CLIPTokenizer.from_pretrained(str(directory), model_max_length=16)
    config = Owlv2Config(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, eos_token_id=vocab - 1,
                         bos_token_id=vocab - 2, pad_token_id=vocab - 1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=64, patch_size=16),
        projection_dim=32,
    )
    torch.manual_seed(seed)
    Owlv2ForObjectDetection(config).save_pretrained(str(directory))
    processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}),
                               tokenizer=tokenizer)
    processor.save_pretrained(str(directory))
    return str(directory)


def make_grounding_dino(directory: str | Path, seed: int = 0) -> str:
    """A GroundingDinoForObjectDetection directory: tiny Swin backbone built from scratch, tiny BERT text side."""
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    directory = Path(directory)
    vocab = write_bert_vocab(directory)
    tokenizer = BertTokenizer.from_pretrained(str(directory), model_max_length=32)
    backbone = SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], image_size=64,
                          out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
    text = BertConfig(vocab_size=vocab, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                      intermediate_size=16, max_position_embeddings=64)
    config = GroundingDinoConfig(  # d_model >= 32 (GroupNorm(32)), >= 2 decoder layers (shared box heads)
        backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1, decoder_layers=2,
        encoder_ffn_dim=16, decoder_ffn_dim=16, encoder_attention_heads=2, decoder_attention_heads=2,
        num_queries=10, max_text_len=32, encoder_n_points=2, decoder_n_points=2,
    )
    torch.manual_seed(seed)
    GroundingDinoForObjectDetection(config).save_pretrained(str(directory))
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
        tokenizer=tokenizer)
    processor.save_pretrained(str(directory))
    return str(directory)
