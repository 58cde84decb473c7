"""Data pipelines (sample -> score -> pair -> filter -> write), installed as mmpref.pipelines."""
from mmpref.pipelines import text_to_audio, text_to_image  # noqa: F401
