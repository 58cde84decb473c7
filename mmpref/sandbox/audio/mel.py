"""Tango's log-mel front end and a Griffin-Lim inverse, so the world can be checked through mel space.

The audio world's base model generates log-mels that a vocoder turns into waveforms; the ground truth
must survive that trip. `log_mel` follows Tango's settings (16 kHz, n_fft 1024, hop 160, Hann window
1024, 64 Slaney mel bands 0-8 kHz, magnitude spectrogram, log(clamp(mel, 1e-5))) with transformers'
`mel_filter_bank` and `torch.stft`, no torchaudio. It is a stand-in written here because no Tango
adapter front end exists yet; it keeps `len // hop` frames (Tango pads/trims to its frame count) and
does no peak normalisation. `mel_to_waveform` inverts it with a pseudo-inverse of the filter bank and
fast Griffin-Lim (momentum 0.99), a crude vocoder that smears events over the 64 ms window.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from mmpref.sandbox.audio.render import HOP_LENGTH, SAMPLE_RATE

if TYPE_CHECKING:
    import torch

N_FFT = 1024
N_MELS = 64
F_MIN = 0.0
F_MAX = 8000.0
LOG_FLOOR = 1e-5
_MOMENTUM = 0.99


@lru_cache(maxsize=4)
def mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-normalised Slaney-scale filters, [n_fft // 2 + 1, n_mels] float32."""
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=F_MIN,
        max_frequency=min(F_MAX, sample_rate / 2),
        sampling_rate=sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return bank.astype(np.float32)


def _stft(x: torch.Tensor) -> torch.Tensor:
    import torch

    window = torch.hann_window(N_FFT, dtype=x.dtype)
    return torch.stft(
        x, N_FFT, HOP_LENGTH, N_FFT, window, center=True, pad_mode="reflect", return_complex=True
    )


def log_mel(waveform: np.ndarray | Any, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Log-mel of a waveform [N] or batch [B, N] at 16 kHz: float32 [frames, 64] or [B, frames, 64],
    frames = N // 160 (time first, as Tango's mel images)."""
    import torch

    if sr != SAMPLE_RATE:
        raise ValueError(f"log_mel expects {SAMPLE_RATE} Hz audio, got {sr} Hz; resample first")
    x = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    single = x.ndim == 1
    x = x.reshape(-1, x.shape[-1])
    frames = x.shape[-1] // HOP_LENGTH
    magnitude = _stft(x).abs()[..., :frames]  # [B, freq, frames]
    mel = torch.einsum("bft,fm->btm", magnitude, torch.from_numpy(mel_filters()))
    out = torch.log(torch.clamp(mel, min=LOG_FLOOR)).numpy()
    return out[0] if single else out


def mel_to_waveform(mel: np.ndarray | Any, n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Waveform(s) [N] or [B, N] (N = frames * 160) from log-mel [frames, 64] or [B, frames, 64], by
    Griffin-Lim on the pseudo-inverse linear magnitude."""
    import torch

    m = torch.as_tensor(np.asarray(mel, dtype=np.float32))
    single = m.ndim == 2
    m = m.reshape(-1, *m.shape[-2:])
    frames = m.shape[1]
    inverse = torch.linalg.pinv(torch.from_numpy(mel_filters()))  # [mels, freq]
    magnitude = torch.clamp(torch.exp(m) @ inverse, min=0.0).transpose(1, 2)  # [B, freq, frames]
    magnitude = torch.cat([magnitude, magnitude[..., -1:]], dim=-1)  # frames + 1 -> frames * hop samples
    length = frames * HOP_LENGTH
    window = torch.hann_window(N_FFT)
    generator = torch.Generator().manual_seed(seed)
    angles = torch.exp(2j * np.pi * torch.rand(magnitude.shape, generator=generator))
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        wave = torch.istft(magnitude * angles, N_FFT, HOP_LENGTH, N_FFT, window, center=True, length=length)
        rebuilt = _stft(wave)
        accelerated = rebuilt - (_MOMENTUM / (1 + _MOMENTUM)) * previous  # fast Griffin-Lim (Perraudin 2013)
        previous = rebuilt
        angles = accelerated / (accelerated.abs() + 1e-8)
    wave = torch.istft(magnitude * angles, N_FFT, HOP_LENGTH, N_FFT, window, center=True, length=length)
    out = wave.numpy().astype(np.float32)
    return out[0] if single else out


def mel_round_trip(waveform: np.ndarray, n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Waveform -> log-mel -> Griffin-Lim waveform: what a mel generator with a crude vocoder can give back."""
    return mel_to_waveform(log_mel(waveform), n_iter=n_iter, seed=seed)
