"""`mmpref eval`: compare models on a prompt set with fixed seeds, scores, bootstrap CIs and win rates.

- `mmpref.evaluation.stats`: the seeded prompt-level bootstrap, paired differences and win rates;
- `mmpref.evaluation.engine`: `EvalSettings`, model loading (pipeline dir, LoRA dir on a base), `evaluate`;
- `mmpref.evaluation.report`: report.json, grid PNGs, a self-contained report.html.
"""
