"""Sample eval models in several CPU processes at once.

A small diffusion model on a CPU runs best at one torch thread per core, so `mmpref eval` with
`processes: N` spawns N workers and deals each model's pipeline calls out between them (call i to
worker i mod N), for images and audio alike (`work`: the modality's module-level function that loads
the model and makes a share of the calls). The calls are the ones a single process makes, with the same
per-sample seeds, so the images, and every score and CI computed from them, do not depend on N.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from mmpref.errors import ConfigError, UserError

Work = Callable[[Any, Any, list[list[Any]]], list[list[Any]]]


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@contextlib.contextmanager
def sampling_pool(settings: Any, device: Any) -> Iterator[SamplingPool | None]:
    """The eval run's workers when `settings.processes` > 1 (CPU only), else None, with `settings.threads`
    applied to this process for the run."""
    if settings.processes > 1 and device.type != "cpu":
        raise ConfigError(f"eval processes: {settings.processes} is for CPU sampling; on {device} use processes: 1.")
    if settings.processes > 1:
        with SamplingPool(settings.processes, settings.threads) as pool:
            yield pool
        return
    from mmpref.pipelines.engine import torch_threads

    with torch_threads(settings.threads if device.type == "cpu" else None):
        yield None


class SamplingPool:
    """Worker processes kept for a whole eval run (each imports torch and diffusers once)."""

    def __init__(self, processes: int, threads: int | None = None) -> None:
        from mmpref.pipelines.engine import cpu_cores

        self.processes = processes
        self.threads = threads or max(1, cpu_cores() // processes)
        self._pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(self.threads,))

    def sample(self, model: Any, settings: Any, batches: list[list[Any]], work: Work) -> list[Any]:
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
