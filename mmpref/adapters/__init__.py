"""Modality adapters: turn a batch into per-sample log-likelihood estimates for policy and reference."""
