"""Tango's mel front end without torchaudio or librosa: decode, resample, normalise, pad, log-mel.

What Tango (and Tango 2's training script) does to a clip before its VAE, checked against the
published code's settings (16 kHz; STFT n_fft 1024, hop 160, Hann window 1024, centred with
reflect padding; magnitude, not power; 64 Slaney-scale, Slaney-normalised mel bands from 0 to 8 kHz;
log(clamp(mel, 1e-5))):

1. decode to mono float32 and resample to 16 kHz (band-limited sinc, `mmpref.reward_models.audio`),
2. remove the mean and scale the peak to 0.5,
3. pad with zeros or trim to the configured length (Tango: 10.24 s = 163,840 samples), and scale the
   peak to 0.5 again (trimming can drop the old peak; silence stays silence),
4. clip to [-1, 1], STFT, mel, log; keep `samples // 160` frames (Tango: 1024; the centred STFT gives
   one more, which Tango trims).

The log-mel is laid out time first, [frames, 64], as the VAE sees it ([B, 1, frames, 64]).
"""

from __future__ import annotations

import io
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmpref.data.images import MediaError

if TYPE_CHECKING:
    import torch
    from PIL import Image

SAMPLE_RATE = 16000
N_FFT = 1024
HOP_LENGTH = 160
WIN_LENGTH = 1024
N_MELS = 64
F_MIN = 0.0
F_MAX = 8000.0
LOG_FLOOR = 1e-5
PEAK = 0.5
TANGO_DURATION = 10.24  # seconds: 1024 mel frames, latent (8, 256, 16)


def num_samples(duration: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples in a clip of `duration` seconds."""
    return int(round(duration * sample_rate))


def num_frames(duration: float) -> int:
    """Mel frames of a clip of `duration` seconds (hop 160 at 16 kHz: 100 frames per second)."""
    return num_samples(duration) // HOP_LENGTH


# ---- decoding ---------------------------------------------------------------------------------------
def decode_audio(value: Any) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate from bytes, a path, or a dict ({bytes, path} as datasets
    stores Audio columns, or {array, sampling_rate} as it decodes them). Raises MediaError saying why not."""
    import soundfile as sf

    if value is None:
        raise MediaError("audio is missing (null)")
    if isinstance(value, dict):
        if value.get("array") is not None:
            rate = value.get("sampling_rate")
            if not rate:
                raise MediaError("audio array has no sampling_rate")
            return _mono(np.asarray(value["array"], dtype=np.float32)), int(rate)
        if value.get("bytes"):
            value = value["bytes"]
        elif value.get("path"):
            value = value["path"]
        else:
            raise MediaError("audio entry has neither bytes nor a path")
    try:
        if isinstance(value, (bytes, bytearray, memoryview)):
            if len(value) == 0:
                raise MediaError("audio bytes are empty")
            data, rate = sf.read(io.BytesIO(bytes(value)), dtype="float32", always_2d=True)
        elif isinstance(value, (str, os.PathLike)):
            if not os.path.isfile(value):
                raise MediaError(f"audio file not found: {value}")
            data, rate = sf.read(str(value), dtype="float32", always_2d=True)
        else:
            raise MediaError(f"expected audio bytes or a path, got {type(value).__name__}")
    except MediaError:
        raise
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, TypeError, ...
        text = getattr(err, "error_string", None) or str(err)  # libsndfile's reason, without the object's repr
        first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        raise MediaError(f"cannot decode audio ({first})") from None
    return _mono(data), int(rate)


def _mono(data: np.ndarray) -> np.ndarray:
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if data.ndim != 1:
        raise MediaError(f"audio array has shape {data.shape}; expected [samples] or [samples, channels]")
    if data.size == 0:
        raise MediaError("audio has no samples")
    if not np.isfinite(data).all():
        raise MediaError("audio has non-finite samples")
    return data


def audio_problem(value: Any) -> str | None:
    """Why `value` is not usable audio, or None (what the data scan runs on every row)."""
    try:
        decode_audio(value)
    except MediaError as err:
        return str(err)
    return None


# ---- waveform preparation ---------------------------------------------------------------------------
def _peak_normalise(x: np.ndarray) -> np.ndarray:
    peak = float(np.abs(x).max()) if x.size else 0.0
    return x * (PEAK / peak) if peak > 0 else x


def prepare_waveform(samples: np.ndarray, sample_rate: int, length: int) -> np.ndarray:
    """Tango's waveform preparation: 16 kHz, mean removed, peak 0.5, zero-padded or trimmed to `length`
    samples, peak 0.5 again (float32 [length])."""
    x = np.asarray(samples, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        from mmpref.reward_models.audio import resample

        x = np.asarray(resample(x, sample_rate, SAMPLE_RATE), dtype=np.float32)
    x = x - x.mean()
    x = x / (np.abs(x).max() + 1e-8) * PEAK
    if x.shape[0] >= length:
        x = x[:length]
    else:
        x = np.concatenate([x, np.zeros(length - x.shape[0], dtype=np.float32)])
    return _peak_normalise(x).astype(np.float32)


# ---- log-mel ---------------------------------------------------------------------------------------
@lru_cache(maxsize=2)
def mel_filters() -> np.ndarray:
    """Slaney-scale, Slaney-normalised triangular filters, [n_fft // 2 + 1, 64] float32 (librosa's default
    `mel` filters, which Tango's STFT module stores as `mel_basis`, transposed)."""
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=N_MELS, min_frequency=F_MIN, max_frequency=F_MAX,
        sampling_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney",
    )
    return bank.astype(np.float32)


def log_mel(waveforms: Any, frames: int | None = None) -> torch.Tensor:
    """Log-mel of 16 kHz waveforms [N] or [B, N]: float32 [frames, 64] or [B, frames, 64].

    `frames` defaults to N // 160; missing frames (only when N < frames·160) are zero-filled, as Tango pads.
    """
    import torch

    x = torch.as_tensor(np.asarray(waveforms, dtype=np.float32) if not isinstance(waveforms, torch.Tensor)
                        else waveforms).float()
    single = x.ndim == 1
    x = torch.nan_to_num(x.reshape(-1, x.shape[-1]).clamp(-1.0, 1.0))
    n = x.shape[-1]
    frames = n // HOP_LENGTH if frames is None else int(frames)
    window = torch.hann_window(WIN_LENGTH, periodic=True, dtype=x.dtype, device=x.device)
    spec = torch.stft(x, N_FFT, HOP_LENGTH, WIN_LENGTH, window, center=True, pad_mode="reflect",
                      return_complex=True).abs()  # [B, 513, n // 160 + 1]
    bank = torch.from_numpy(mel_filters()).to(x.device)
    mel = torch.log(torch.clamp(torch.einsum("bft,fm->btm", spec, bank), min=LOG_FLOOR))
    if mel.shape[1] >= frames:
        mel = mel[:, :frames]
    else:
        mel = torch.cat([mel, mel.new_zeros(mel.shape[0], frames - mel.shape[1], N_MELS)], dim=1)
    return mel[0] if single else mel


def clip_to_log_mel(value: Any, duration: float) -> torch.Tensor:
    """Decode one media value and run the whole front end: [frames, 64] for a clip of `duration` s."""
    samples, rate = decode_audio(value)
    length = num_samples(duration)
    return log_mel(prepare_waveform(samples, rate, length), frames=length // HOP_LENGTH)


def prepare_clips(values: Any, rng: Any = None, *, duration: float) -> dict[str, torch.Tensor]:
    """A data row's G clips as VAE inputs {"mel": [G, 1, frames, 64]} (no augmentation: `rng` unused).

    Module-level so `functools.partial(prepare_clips, duration=...)` pickles into data-loader workers.
    """
    import torch

    return {"mel": torch.stack([clip_to_log_mel(v, duration) for v in values]).unsqueeze(1)}


# ---- outputs ---------------------------------------------------------------------------------------
def write_wav(path: str | Path, waveform: Any, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a mono float waveform as 16-bit PCM WAV (clipped to [-1, 1])."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(waveform, dtype=np.float32).reshape(-1), -1.0, 1.0)
    sf.write(str(path), data, int(sample_rate), subtype="PCM_16")
    return path


def mel_picture(mel: Any, vmin: float = math.log(LOG_FLOOR), vmax: float | None = None) -> Image.Image:
    """A log-mel [frames, 64] as an RGB picture (time left to right, low frequencies at the bottom, magma)."""
    from matplotlib import colormaps
    from PIL import Image

    m = np.asarray(mel.detach().cpu() if hasattr(mel, "detach") else mel, dtype=np.float32)
    top = float(m.max()) if vmax is None else vmax
    scaled = np.clip((m - vmin) / max(top - vmin, 1e-6), 0.0, 1.0).T[::-1]  # [64, frames], low bands at the bottom
    rgb = (colormaps["magma"](scaled)[..., :3] * 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((rgb.shape[1], 2 * rgb.shape[0]), Image.NEAREST)
