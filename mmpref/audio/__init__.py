"""Text-to-audio building blocks: Tango's mel front end, a Tango-shaped diffusers pipeline, and a converter
from the published Tango / Tango 2 checkpoint layout.

- `mmpref.audio.mel`: waveform → Tango log-mel (16 kHz, n_fft 1024, hop 160, 64 Slaney bands 0–8 kHz,
  log(clamp(mel, 1e-5))), audio decoding with reasons, WAV writing and mel-spectrogram pictures.
- `mmpref.audio.pipeline`: `TangoPipeline`, a `DiffusionPipeline` of stock classes (T5 encoder, 8-channel
  mel-latent UNet2DConditionModel, mel AutoencoderKL, SpeechT5HifiGan vocoder, v-prediction scheduler).
- `mmpref.audio.convert_tango`: `python -m mmpref.audio.convert_tango SRC DEST`.

Heavy libraries (torch, diffusers, transformers) load only inside the modules that need them.
"""
