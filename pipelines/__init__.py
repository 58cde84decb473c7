"""Data pipelines (sample -> score -> pair -> filter -> write), installed as mmpref.pipelines."""
