"""The text-to-image adapter on tiny SD 1.x and SDXL pipelines saved to disk and loaded through from_pretrained.

Values are checked against formulas computed here independently: the prediction targets, the ½-factor
log-likelihood, SDXL's conditioning, and the shared timestep/noise of a pair.
"""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from mmpref.adapters.prediction import DiffusionProcess, per_sample_mse
from mmpref.adapters.text_to_image import TextToImageAdapter, TextToImageParams
from mmpref.data.images import paired_crop_flip
from mmpref.testing.tiny import build_tiny_sd


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {
        "sd": build_tiny_sd(root / "sd", "sd"),
        "sdxl": build_tiny_sd(root / "sdxl", "sdxl"),
        "sd_v": build_tiny_sd(root / "sd_v", "sd", prediction_type="v_prediction"),
    }


def load(path, **kw) -> TextToImageAdapter:
    adapter = TextToImageAdapter(TextToImageParams(pretrained=str(path), resolution=32, **kw))
    adapter.load(torch.device("cpu"), torch.float32)
    return adapter


def batch_of(adapter: TextToImageAdapter, prompts: list[str], seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    b = len(prompts)
    pixels = torch.rand(b, 2, 3, 32, 32, generator=g) * 2 - 1
    time_ids = torch.tensor([[40.0, 32.0, 4.0, 0.0, 32.0, 32.0], [32.0, 48.0, 0.0, 8.0, 32.0, 32.0]])
    return {"prompt": prompts, "pixel_values": pixels, "time_ids": time_ids.expand(b, 2, 6).clone()}


def test_prediction_targets_match_formulas():
    from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

    x0, noise = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    t = torch.tensor([0, 500, 999])
    ddpm = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    a = ddpm.alphas_cumprod[t].sqrt().view(-1, 1, 1, 1)
    s = (1 - ddpm.alphas_cumprod[t]).sqrt().view(-1, 1, 1, 1)
    eps = DiffusionProcess(ddpm)
    assert eps.prediction_type == "epsilon"
    torch.testing.assert_close(eps.add_noise(x0, noise, t), a * x0 + s * noise)
    torch.testing.assert_close(eps.target(x0, noise, t), noise)
    v = DiffusionProcess(ddpm, "v_prediction")
    torch.testing.assert_close(v.target(x0, noise, t), a * noise - s * x0)
    flow = DiffusionProcess(FlowMatchEulerDiscreteScheduler())
    assert flow.prediction_type == "flow_matching"
    tf = torch.tensor([0.0, 250.0, 1000.0])
    sigma = (tf / 1000).view(-1, 1, 1, 1)
    torch.testing.assert_close(flow.add_noise(x0, noise, tf), (1 - sigma) * x0 + sigma * noise)
    torch.testing.assert_close(flow.target(x0, noise, tf), noise - x0)
    ts = flow.sample_timesteps(1000, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert ts.is_floating_point() and 0 <= ts.min() and ts.max() < 1000
    torch.testing.assert_close(per_sample_mse(x0, noise), ((x0 - noise) ** 2).mean(dim=(1, 2, 3)))


def test_timestep_range_bounds_the_training_timesteps(pipelines):
    from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

    g, cpu = torch.Generator().manual_seed(0), torch.device("cpu")
    full = DiffusionProcess(DDPMScheduler()).sample_timesteps(4000, g, cpu)
    assert full.min() == 0 and full.max() == 999, "default: every timestep"
    high = DiffusionProcess(DDPMScheduler(), timestep_range=(0.6, 1.0)).sample_timesteps(4000, g, cpu)
    assert high.dtype == torch.long and high.min() == 600 and high.max() == 999
    flow = DiffusionProcess(FlowMatchEulerDiscreteScheduler(), timestep_range=(0.25, 0.5))
    tf = flow.sample_timesteps(4000, g, cpu)
    assert 250 <= tf.min() < 260 and 490 < tf.max() < 500
    with pytest.raises(ValueError, match="timestep_range"):
        DiffusionProcess(DDPMScheduler(), timestep_range=(0.5, 0.5))
    adapter = load(pipelines["sd"], timestep_range=[0.8, 1.0])
    assert adapter.process.timestep_range == (0.8, 1.0)
    with pytest.raises(ValueError, match="timestep_range"):
        TextToImageParams(pretrained="x", timestep_range=[0.2]).check()


def test_same_crop_and_flip_for_both_images_of_a_pair():
    base = Image.new("RGB", (48, 40))
    base.paste((255, 0, 0), (0, 0, 24, 40))  # left half red: shows flips and crops
    for seed in range(6):
        pixels, time_ids = paired_crop_flip([base, base.copy()], 32, random.Random(seed), random_crop=True)
        torch.testing.assert_close(pixels[0], pixels[1])
        torch.testing.assert_close(time_ids[0], time_ids[1])
        assert time_ids[0, :2].tolist() == [40.0, 48.0] and time_ids[0, 4:].tolist() == [32.0, 32.0]
    # Images of different sizes still get the same relative crop position and the same flip.
    small = base.resize((24, 20))
    draws = {tuple(paired_crop_flip([base, small], 16, random.Random(s), True)[1][:, 2:4].flatten().tolist())
             for s in range(8)}
    assert len(draws) > 1


@pytest.mark.parametrize("kind", ["sd", "sdxl"])
def test_logp_is_minus_half_mse_with_shared_noise_in_pairs(pipelines, kind):
    adapter = load(pipelines[kind])
    assert adapter.is_xl == (kind == "sdxl") and adapter.process.prediction_type == "epsilon"
    batch = batch_of(adapter, ["a red cube", "a blue ball", "two cats"])
    encoded = adapter.encode(batch, torch.Generator().manual_seed(1))
    draw = adapter.draw(encoded, torch.Generator().manual_seed(2))
    b = 3
    # One timestep and one noise per pair, shared by chosen (first B rows) and rejected (last B rows).
    assert encoded.samples.shape[0] == 2 * b and encoded.group_size == 2
    torch.testing.assert_close(draw.timesteps[:b], draw.timesteps[b:])
    torch.testing.assert_close(draw.noise[:b], draw.noise[b:])
    assert not torch.equal(draw.noise[0], draw.noise[1])

    logp = adapter.log_likelihood(adapter.unet, encoded, draw)

    # Independent computation: VAE latents, text conditioning and the UNet called directly.
    pixels = torch.cat([batch["pixel_values"][:, 0], batch["pixel_values"][:, 1]])
    vae = adapter.vae
    g = torch.Generator().manual_seed(1)
    flat = vae.encode(batch["pixel_values"].flatten(0, 1)).latent_dist.sample(generator=g) * vae.config.scaling_factor
    latents = flat.view(b, 2, *flat.shape[1:]).transpose(0, 1).reshape(2 * b, *flat.shape[1:])
    torch.testing.assert_close(encoded.samples, latents)
    assert pixels.shape[0] == 2 * b
    pipe = adapter.pipeline
    ids = pipe.tokenizer(batch["prompt"], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        if kind == "sd":
            text = pipe.text_encoder(ids)[0]
            kwargs = {}
        else:
            out1 = pipe.text_encoder(ids, output_hidden_states=True)
            out2 = pipe.text_encoder_2(ids, output_hidden_states=True)
            text = torch.cat([out1.hidden_states[-2], out2.hidden_states[-2]], dim=-1)
            time_ids = batch["time_ids"].transpose(0, 1).reshape(2 * b, 6)
            kwargs = {"added_cond_kwargs": {"text_embeds": out2.text_embeds.repeat(2, 1), "time_ids": time_ids}}
        alphas = adapter.process.scheduler.alphas_cumprod[draw.timesteps].view(-1, 1, 1, 1)
        noisy = alphas.sqrt() * latents + (1 - alphas).sqrt() * draw.noise
        pred = adapter.unet(noisy, draw.timesteps, encoder_hidden_states=text.repeat(2, 1, 1), **kwargs).sample
    expected = -0.5 * ((pred - draw.noise) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(logp, expected, rtol=1e-5, atol=1e-6)

    # logp_scale is the convention knob: 1.0 doubles every estimate.
    adapter.logp_scale = 1.0
    torch.testing.assert_close(adapter.log_likelihood(adapter.unet, encoded, draw), 2 * expected, rtol=1e-5, atol=1e-6)


def test_v_prediction_follows_the_scheduler_config(pipelines):
    adapter = load(pipelines["sd_v"])
    assert adapter.process.prediction_type == "v_prediction"
    batch = batch_of(adapter, ["a", "b"])
    encoded = adapter.encode(batch, torch.Generator().manual_seed(0))
    draw = adapter.draw(encoded, torch.Generator().manual_seed(0))
    sched = adapter.process.scheduler
    a = sched.alphas_cumprod[draw.timesteps].view(-1, 1, 1, 1)
    target = adapter.process.target(encoded.samples, draw.noise, draw.timesteps)
    torch.testing.assert_close(target, a.sqrt() * draw.noise - (1 - a).sqrt() * encoded.samples)
    # An explicit override wins over the scheduler config (for checkpoints with a wrong scheduler file).
    assert load(pipelines["sd"], prediction_type="v_prediction").process.prediction_type == "v_prediction"


def test_unusable_pretrained_is_one_clear_line(tmp_path):
    from mmpref.errors import UserError

    with pytest.raises(UserError, match="not a diffusers pipeline directory"):
        load(tmp_path / "nothing-here")


def test_attention_backend_switch(pipelines):
    import importlib.util

    from mmpref.errors import UserError

    adapter = load(pipelines["sdxl"])
    assert adapter.enable_memory_efficient_attention("sdpa") == "sdpa"
    assert adapter.enable_memory_efficient_attention("auto") == "sdpa"  # xformers only on CUDA
    assert {type(p).__name__ for p in adapter.unet.attn_processors.values()} == {"AttnProcessor2_0"}
    if importlib.util.find_spec("xformers") is None:
        with pytest.raises(UserError, match=r"model.attention: xformers is not installed"):
            adapter.enable_memory_efficient_attention("xformers")
