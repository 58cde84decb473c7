"""TangoPipeline and the Tango-checkpoint converter on tiny random weights in the real layouts.

The checkpoint is written by `mmpref.testing.tiny_audio` in the published Tango layout (three JSON
configs, three `torch.save`d state dicts, the VAE in original latent-diffusion names with the HiFi-GAN
under `vocoder.`); the VAE conversion is checked against diffusers' own LDM converter, an independent
implementation of the same mapping.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from mmpref.audio.convert_tango import convert_tango, main
from mmpref.audio.mel import write_wav
from mmpref.audio.pipeline import TangoPipeline
from mmpref.testing.tiny_audio import TINY_SCALE_FACTOR, write_tiny_tango_checkpoint


@pytest.fixture(scope="module")
def tango(tmp_path_factory):
    root = tmp_path_factory.mktemp("tango")
    src = write_tiny_tango_checkpoint(root / "ckpt")
    assert main([str(src), str(root / "pipe")]) == 0  # the CLI entry point
    return src, root / "pipe"


def load(path) -> TangoPipeline:
    pipe = TangoPipeline.from_pretrained(str(path))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_converter_places_every_tensor_of_the_published_layout(tango):
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    src, dest = tango
    assert sorted(p.name for p in src.glob("*.*")) == sorted(
        ["vae_config.json", "stft_config.json", "main_config.json", "pytorch_model_vae.bin", "pytorch_model_stft.bin",
         "pytorch_model_main.bin"])
    pipe = load(dest)
    main_state = torch.load(src / "pytorch_model_main.bin", weights_only=True)
    vae_state = torch.load(src / "pytorch_model_vae.bin", weights_only=True)

    for key, value in pipe.unet.state_dict().items():
        assert torch.equal(value, main_state[f"unet.{key}"]), key
    encoder = pipe.text_encoder.state_dict()
    for key, value in main_state.items():
        if key.startswith("text_encoder."):
            assert torch.equal(encoder[key[len("text_encoder."):]], value), key

    # The VAE: exactly what diffusers' single-file LDM converter makes of the same tensors.
    oracle = convert_ldm_vae_checkpoint({k: v for k, v in vae_state.items() if not k.startswith("vocoder.")},
                                        dict(pipe.vae.config))
    ours = pipe.vae.state_dict()
    assert set(oracle) == set(ours)
    for key, value in oracle.items():
        assert torch.equal(value.reshape(ours[key].shape), ours[key]), key
    assert pipe.vae.config.scaling_factor == TINY_SCALE_FACTOR
    assert (pipe.vae.config.in_channels, pipe.vae.config.out_channels, pipe.vae.config.latent_channels) == (1, 1, 8)

    # The vocoder: HiFi-GAN's ups.{i} become upsampler.{i}; no input normalisation.
    vocoder = pipe.vocoder.state_dict()
    for key, value in vae_state.items():
        if key.startswith("vocoder."):
            name = key[len("vocoder."):]
            name = "upsampler." + name[len("ups."):] if name.startswith("ups.") else name
            assert torch.equal(vocoder[name], value), key
    assert not pipe.vocoder.config.normalize_before
    assert torch.equal(vocoder["mean"], torch.zeros(64)) and torch.equal(vocoder["scale"], torch.ones(64))
    assert (pipe.sample_rate, pipe.hop_length, pipe.n_mels) == (16000, 160, 64)

    # SD 2.1's scheduler (v-prediction), Tango's default clip length; nothing pickled in the output.
    s = pipe.scheduler.config
    assert (type(pipe.scheduler).__name__, s.prediction_type, s.beta_schedule, s.beta_start, s.beta_end) == (
        "DDPMScheduler", "v_prediction", "scaled_linear", 0.00085, 0.012)
    assert pipe.config.default_audio_length_in_s == 10.24
    assert not list(dest.rglob("*.bin")) and list(dest.rglob("*.safetensors"))
    assert json.loads((dest / "model_index.json").read_text())["_class_name"] == "TangoPipeline"


def test_generation_writes_a_wav_of_the_configured_length_and_rate(tango, tmp_path):
    pipe = load(tango[1])
    out = pipe(["a dog barking", "two clicks then a low beep"], audio_length_in_s=1.28, num_inference_steps=2,
               generator=torch.Generator().manual_seed(0)).audios
    assert out.shape == (2, 20480) and out.dtype == np.float32 and np.isfinite(out).all()
    path = write_wav(tmp_path / "clip.wav", out[0], pipe.sample_rate)
    info = sf.info(str(path))
    assert (info.samplerate, info.frames, info.channels) == (16000, 20480, 1)
    # A length that is no multiple of the latent grid: sampled on the next multiple, trimmed to the request.
    odd = pipe("a dog barking", audio_length_in_s=0.5, num_inference_steps=1, guidance_scale=1.0,
               generator=torch.Generator().manual_seed(0))
    assert odd.audios.shape == (1, 8000)
    mel = pipe("a dog barking", audio_length_in_s=1.28, num_inference_steps=1, output_type="mel").audios
    assert mel.shape == (1, 128, 64)


def test_save_load_round_trip_gives_the_same_audio(tango, tmp_path):
    pipe = load(tango[1])
    kwargs = dict(audio_length_in_s=1.28, num_inference_steps=2, guidance_scale=3.0)
    first = pipe("rain on a roof", generator=torch.Generator().manual_seed(7), **kwargs).audios
    pipe.save_pretrained(str(tmp_path / "again"))
    again = load(tmp_path / "again")
    second = again("rain on a roof", generator=torch.Generator().manual_seed(7), **kwargs).audios
    np.testing.assert_array_equal(first, second)
    for (name, a), b in zip(pipe.unet.state_dict().items(), again.unet.state_dict().values()):
        assert torch.equal(a, b), name


def test_guidance_pads_the_empty_prompt_to_the_prompt_length_and_masks_it(tango):
    pipe = load(tango[1])
    assert pipe.tokenizer("").input_ids == [1]  # '</s>' only: the empty prompt is not empty
    embeds, mask = pipe.encode_prompt(["a dog barking loud"], torch.device("cpu"), do_classifier_free_guidance=True)
    assert embeds.shape == (2, 5, 32)
    assert mask.tolist() == [[1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]  # unconditional first, padded and masked

    # One guided step, recomputed by hand: x' = step(u + g·(c − u)) with the masked T5 states.
    latents = torch.randn(1, 8, 32, 16, generator=torch.Generator().manual_seed(3))
    got = pipe("a dog barking loud", audio_length_in_s=1.28, num_inference_steps=1, guidance_scale=3.0,
               latents=latents.clone(), output_type="latent").audios
    sched = pipe.scheduler
    sched.set_timesteps(1)
    t = sched.timesteps[0]
    tok = pipe.tokenizer(["", "a dog barking loud"], padding=True, return_tensors="pt")
    with torch.no_grad():
        states = pipe.text_encoder(input_ids=tok.input_ids, attention_mask=tok.attention_mask).last_hidden_state
        pred = pipe.unet(torch.cat([latents, latents]), t, encoder_hidden_states=states,
                         encoder_attention_mask=tok.attention_mask).sample
    uncond, cond = pred.chunk(2)
    expected = sched.step(uncond + 3.0 * (cond - uncond), t, latents).prev_sample
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_converter_refuses_what_it_cannot_place(tango, tmp_path, capsys):
    src, _ = tango
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (broken / f.name).write_bytes(f.read_bytes())
    state = torch.load(src / "pytorch_model_vae.bin", weights_only=True)
    state["encoder.extra.weight"] = torch.zeros(1)
    torch.save(state, broken / "pytorch_model_vae.bin")
    assert main([str(broken), str(tmp_path / "out")]) == 2
    assert "1 tensors of no known VAE layer, e.g. ['encoder.extra.weight']" in capsys.readouterr().err
    (broken / "main_config.json").unlink()
    with pytest.raises(Exception, match="missing main_config.json"):
        convert_tango(broken, tmp_path / "out2")
