"""Tango's mel front end (`mmpref.audio.mel`) against an independent computation, and audio decoding.

The reference below is written from the definitions, not from the module: frames of the reflect-padded
signal times a periodic Hann window, a plain DFT matrix in float64, the Slaney mel scale and Slaney
area normalisation written out, log(max(mel, 1e-5)).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from mmpref.audio import mel
from mmpref.data.images import MediaError


def slaney_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(f < 1000.0, 3.0 * f / 200.0, log_part)


def slaney_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp((m - 15.0) * math.log(6.4) / 27.0))


def reference_filters(sr: int = 16000, n_fft: int = 1024, n_mels: int = 64, fmax: float = 8000.0) -> np.ndarray:
    """[n_fft/2 + 1, n_mels] triangles between Slaney-mel-spaced edges, each scaled to unit area (2 / width)."""
    edges = slaney_hz(np.linspace(slaney_mel(0.0), slaney_mel(fmax), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    bank = np.zeros((freqs.size, n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rising = (freqs - lo) / (mid - lo)
        falling = (hi - freqs) / (hi - mid)
        bank[:, m] = np.maximum(0.0, np.minimum(rising, falling)) * 2.0 / (hi - lo)
    return bank


def reference_log_mel(x: np.ndarray, n_fft: int = 1024, hop: int = 160) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), -1, 1)
    padded = np.pad(x, n_fft // 2, mode="reflect")
    n_frames = 1 + (padded.size - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = np.stack([padded[i * hop:i * hop + n_fft] * window for i in range(n_frames)])
    k = np.arange(n_fft // 2 + 1)[:, None]
    dft = np.exp(-2j * np.pi * k * np.arange(n_fft)[None, :] / n_fft)
    magnitude = np.abs(frames @ dft.T)  # [frames, 513]
    out = np.log(np.maximum(magnitude @ reference_filters(), 1e-5))
    return out[: x.size // hop]


def test_log_mel_matches_an_independent_dft_and_slaney_filterbank():
    rng = np.random.default_rng(0)
    t = np.arange(4800) / 16000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * (300 + 4000 * t) * t) + 0.05 * rng.standard_normal(t.size)
    x[:1600] = 0.0  # a silent stretch longer than the window exercises the 1e-5 floor
    ours = mel.log_mel(x.astype(np.float32)).numpy()
    expected = reference_log_mel(x)
    assert ours.shape == (30, 64) == expected.shape
    np.testing.assert_allclose(ours, expected, atol=2e-4, rtol=0)
    assert ours.min() == pytest.approx(math.log(1e-5), abs=1e-6)
    np.testing.assert_allclose(mel.mel_filters(), reference_filters(), atol=1e-6, rtol=1e-4)
    # Batched input gives the same rows; a requested frame count pads with zeros (as Tango pads).
    batch = mel.log_mel(np.stack([x, x[::-1]]).astype(np.float32))
    np.testing.assert_allclose(batch[0].numpy(), ours, atol=1e-5)
    longer = mel.log_mel(x.astype(np.float32), frames=32)  # the centred STFT has 4800 // 160 + 1 = 31 frames
    assert longer.shape == (32, 64) and torch.equal(longer[:30], torch.from_numpy(ours))
    assert float(longer[31].abs().max()) == 0.0


def test_waveform_preparation_normalises_pads_trims_and_resamples():
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(8000) + 0.3).astype(np.float32)  # DC offset, peak far from 0.5
    short = mel.prepare_waveform(x, 16000, 20480)
    assert short.shape == (20480,) and short.dtype == np.float32
    assert np.abs(short).max() == pytest.approx(0.5, abs=1e-6)
    assert abs(short[:8000].mean()) < 1e-3 and not short[8000:].any()  # mean removed, zero-padded
    long = mel.prepare_waveform(np.concatenate([x, 5 * x]), 16000, 8000)  # the loud half is trimmed away
    assert long.shape == (8000,) and np.abs(long).max() == pytest.approx(0.5, abs=1e-6)  # peak 0.5 again
    silent = mel.prepare_waveform(np.zeros(100, dtype=np.float32), 16000, 1600)
    assert np.isfinite(silent).all() and not silent.any()
    # A 1 kHz tone recorded at 32 kHz gives the 16 kHz tone's log-mel.
    t32, t16 = np.arange(64000) / 32000, np.arange(32000) / 16000
    at32 = mel.log_mel(mel.prepare_waveform(np.sin(2 * np.pi * 1000 * t32).astype(np.float32), 32000, 20480))
    at16 = mel.log_mel(mel.prepare_waveform(np.sin(2 * np.pi * 1000 * t16).astype(np.float32), 16000, 20480))
    assert at32.shape == at16.shape == (mel.num_frames(1.28), 64) == (128, 64)
    loud = at16[10:-10] > at16.max() - 6  # bins within 6 nepers of the peak
    assert torch.equal(at16[10:-10].argmax(dim=1), at32[10:-10].argmax(dim=1))
    assert float((at16[10:-10] - at32[10:-10])[loud].abs().max()) < 0.05


def _wav(x: np.ndarray, sr: int = 16000, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, x, sr, format=fmt)
    return buffer.getvalue()


def test_decoding_every_media_form_and_reasons_for_bad_clips(tmp_path):
    x = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    stereo = np.stack([x, -x], axis=1)
    (tmp_path / "a.flac").write_bytes(_wav(stereo, 22050, "FLAC"))
    forms = [_wav(x), {"bytes": _wav(x), "path": "ignored.wav"}, {"bytes": None, "path": str(tmp_path / "a.flac")},
             str(tmp_path / "a.flac"), {"array": x, "sampling_rate": 16000}]
    decoded = [mel.decode_audio(v) for v in forms]
    assert [r for _, r in decoded] == [16000, 16000, 22050, 22050, 16000]
    np.testing.assert_allclose(decoded[0][0], x, atol=1 / 32768)
    assert np.abs(decoded[2][0]).max() < 1e-4  # stereo averaged to mono (x and -x cancel)
    assert all(mel.audio_problem(v) is None for v in forms)
    problems = {
        "null": (None, "audio is missing (null)"),
        "empty bytes": (b"", "audio bytes are empty"),
        "junk": (b"RIFF\x00\x00\x00\x00WAVEjunk", "cannot decode audio (Error in WAV file. No 'data' chunk marker.)"),
        "no samples": (_wav(np.zeros(0, dtype=np.float32)), "audio has no samples"),
        "missing file": (str(tmp_path / "nope.wav"), f"audio file not found: {tmp_path / 'nope.wav'}"),
        "neither": ({"bytes": None, "path": None}, "audio entry has neither bytes nor a path"),
        "nan": ({"array": np.array([0.0, np.nan]), "sampling_rate": 16000}, "audio has non-finite samples"),
    }
    for name, (value, reason) in problems.items():
        assert mel.audio_problem(value) == reason, name
    with pytest.raises(MediaError):
        mel.clip_to_log_mel(b"junk", 1.28)
    # The whole front end on a 22.05 kHz stereo FLAC: [G, 1, frames, 64] for the VAE.
    out = mel.prepare_clips([str(tmp_path / "a.flac"), _wav(x)], None, duration=0.32)
    assert out["mel"].shape == (2, 1, 32, 64) and torch.isfinite(out["mel"]).all()


def test_wav_writer_and_mel_picture(tmp_path):
    t = np.arange(20480) / 16000
    wave = 0.5 * np.sin(2 * np.pi * (200 * t + 1500 * t**2))
    path = mel.write_wav(tmp_path / "x" / "chirp.wav", wave)
    info = sf.info(str(path))
    assert (info.samplerate, info.frames, info.channels, info.subtype) == (16000, 20480, 1, "PCM_16")
    picture = mel.mel_picture(mel.log_mel(wave.astype(np.float32)))
    assert picture.size == (128, 128) and picture.mode == "RGB"
    brightness = np.asarray(picture).sum(axis=2)
    # A rising chirp: early frames are brightest low (bottom rows), late frames high (top rows).
    assert brightness[:, 20].argmax() > brightness[:, 110].argmax()
