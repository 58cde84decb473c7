"""Sample eval models in several CPU processes at once.

A small diffusion model on a CPU runs best at one torch thread per core, so `mmpref eval` with
`processes: N` spawns N workers and deals each model's pipeline calls out between them (call i to
worker i mod N), for images and for audio alike (`work`: the module-level function that loads the model
and makes a share of the calls). The calls are the ones a single process makes, with the same per-sample seeds, so
the images, and every score and CI computed from them, do not depend on N.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from mmpref.errors import UserError


def default_threads(processes: int) -> int:
    """The cores this process may use, split between the workers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // processes)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def sample_image_part(model: Any, settings: Any, batches: list[list[Any]]) -> list[list[Any]]:
    """Worker: load the model (stock diffusers, LoRA fused) and run its share of the pipeline calls; the
    results of each call."""
    from mmpref.evaluation.engine import load_model, sample_batches
    from mmpref.pipelines.engine import pick_device

    pipe = load_model(model, settings, pick_device(settings.device, 0))
    return [sample_batches(pipe, [batch], settings) for batch in batches]


class SamplingPool:
    """Worker processes kept for a whole eval run (each imports torch and diffusers once)."""

    def __init__(self, processes: int, threads: int | None = None) -> None:
        self.processes = processes
        self.threads = threads or default_threads(processes)
        self._pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(self.threads,))

    def sample(self, model: Any, settings: Any, batches: list[list[Any]],
               work: Callable[[Any, Any, list[list[Any]]], list[list[Any]]] = sample_image_part) -> list[Any]:
        """`SampleResult`s of every batch, in the order of `batches`; `work(model, settings, share)` runs in a
        worker and returns the results of each call of its share."""
        n = self.processes
        parts = [batches[r::n] for r in range(n)]
        futures = [self._pool.submit(work, model, settings, part) for part in parts if part]
        try:
            done = [f.result() for f in futures]
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - a worker died or raised: say which model, keep the cause
            raise UserError(f"eval: sampling model '{model.name}' in {n} processes failed ({type(err).__name__}: "
                            f"{err}); run with processes: 1 to see the full error.") from err
        # call i went to worker i mod n as its (i div n)-th: put them back in order
        return [result for i in range(len(batches)) for result in done[i % n][i // n]]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SamplingPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
