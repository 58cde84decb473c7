"""Run a generate job: plan shards, split them between processes, resume, and finalise the report.

Modality-agnostic: a pipeline (text-to-image today) describes itself as a `Job` (its prompts,
sampler and scorer factories, pairing and filters) and this module does the rest. Shards are fixed
blocks of prompts, so a shard's content depends on nothing but the config; process r of N takes
shards r, r+N, ... (N from `accelerate launch` through PartialState, or from runtime.processes), and
any split and any restart give the same dataset.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from mmpref.errors import UserError
from mmpref.pipelines.filters import FiltersConfig
from mmpref.pipelines.pairing import PairingConfig
from mmpref.pipelines.prompts import PromptList, PromptsConfig, load_prompts, resolve_transform
from mmpref.pipelines.sampling import Sampler
from mmpref.pipelines.settings import OutputConfig, RuntimeConfig
from mmpref.pipelines.shards import RunDirectory
from mmpref.pipelines.worker import ShardWorker
from mmpref.pipelines.writer import write_pairs, write_samples


@dataclass
class Job:
    """What a pipeline hands the engine; built from its config by a module-level factory."""

    pipeline: str  # registered pipeline name
    prompts: PromptsConfig
    samples_per_prompt: int
    seed: int
    pairing: PairingConfig
    filters: FiltersConfig
    output: OutputConfig
    runtime: RuntimeConfig
    content: dict[str, Any]  # the config keys that decide the dataset (fingerprinted for resume)
    config: dict[str, Any]  # the whole resolved config (written to config.yaml)
    open_sampler: Callable[[torch.device], Sampler]
    open_scorer: Callable[[torch.device], Any]
    plugin_modules: tuple[str, ...] = ()  # modules that register the job's components (re-imported by workers)
    # Optional hooks for pipelines whose shards are not ShardWorker's (text-to-audio: strategies, several scorers):
    open_worker: Callable[[Sampler, Any], Any] | None = None  # (sampler, scorer) -> object with run() and scorer_name
    write_rows: Callable[[list[dict[str, Any]], Any], int] | None = None  # (rows, path) -> bytes; default from strategy
    contact_sheet: Callable[[list[dict[str, Any]], Any], None] | None = None  # (rows, path); default: PNG rows
    finish: Callable[[Any, list[dict[str, Any]], dict[str, Any]], None] | None = None  # (rundir, records, summary)


JobFactory = Callable[[Any], Job]

BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
"""tqdm's default bar, but always in prompts/s (tqdm flips slow rates to s/prompt), then the ETA."""


def plan_shards(n_prompts: int, prompts_per_shard: int) -> list[range]:
    """Positions (into the prompt list) of each shard: fixed consecutive blocks."""
    return [range(s, min(s + prompts_per_shard, n_prompts)) for s in range(0, n_prompts, prompts_per_shard)]


def assign_shards(total: int, rank: int, world: int) -> list[int]:
    """Shards of process `rank` out of `world`: round robin, no overlap, every shard once."""
    return list(range(rank, total, world))


def pick_device(spec: str, rank: int) -> torch.device:
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device(f"cuda:{rank % torch.cuda.device_count()}")
        return torch.device("cpu")
    try:
        return torch.device(spec)
    except RuntimeError:
        raise UserError(f"runtime.device: '{spec}' is not a device; use auto, cpu, cuda or cuda:N.") from None


def cpu_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run a block with `threads` torch CPU threads (None or 0: as they are) and give the previous count back
    afterwards, also on error; yields the count in force."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def set_threads(runtime: RuntimeConfig, world: int, device: torch.device) -> int:
    """CPU threads for this process: runtime.threads, or the available cores split between processes."""
    if device.type == "cpu" and (runtime.threads is not None or world > 1):
        torch.set_num_threads(runtime.threads or max(1, cpu_cores() // world))
    return torch.get_num_threads()


@dataclass
class _Run:
    job: Job
    prompts: PromptList
    shards: list[range]
    content: dict[str, Any]

    @property
    def directory(self) -> RunDirectory:
        return RunDirectory(self.job.output.dir, len(self.shards))


def _prepare(job: Job) -> _Run:
    prompts = load_prompts(job.prompts)
    resolve_transform(job.prompts.transform)  # fail on a bad transform before any model loads
    shards = plan_shards(len(prompts.prompts), job.output.prompts_per_shard)
    content = {**job.content, "prompts": {"source": prompts.source, "count": len(prompts.prompts),
                                          "sha256": prompts.digest}, "shards": len(shards)}
    return _Run(job, prompts, shards, content)


def run_worker(run: _Run, rank: int, world: int, device: torch.device | None = None) -> int:
    """Generate this process's incomplete shards; returns how many it wrote."""
    job, rundir = run.job, run.directory
    device = device if device is not None else pick_device(job.runtime.device, rank)
    threads = set_threads(job.runtime, world, device)
    mine = assign_shards(len(run.shards), rank, world)
    todo = [k for k in mine if rundir.read_record(k) is None]
    total = sum(len(run.shards[k]) for k in mine)
    done = total - sum(len(run.shards[k]) for k in todo)
    if not todo:
        return 0
    scorer = job.open_scorer(device)  # first: a missing scorer checkpoint fails before a large model loads
    if job.open_worker is not None:
        worker = job.open_worker(job.open_sampler(device), scorer)
    else:
        worker = ShardWorker(job.open_sampler(device), scorer, samples_per_prompt=job.samples_per_prompt,
                             seed=job.seed, batch_size=job.runtime.batch_size, pairing=job.pairing,
                             filters=job.filters, transform=resolve_transform(job.prompts.transform))
    write = job.write_rows or (write_samples if job.pairing.unpaired else write_pairs)
    desc = "generate" if world == 1 else f"generate [{rank + 1}/{world}]"
    with tqdm(total=total, initial=done, unit="prompt", desc=desc, disable=not job.runtime.progress,
              position=rank if world > 1 else None, dynamic_ncols=True, smoothing=0.1, bar_format=BAR_FORMAT) as bar:
        for k in todo:
            started = time.perf_counter()
            prompts = [run.prompts.prompts[i] for i in run.shards[k]]
            result = worker.run(prompts, on_prompt_done=bar.update)
            size = write(result.rows, rundir.shard_file(k))
            rundir.write_record(k, {
                "shard": k, "file": str(rundir.shard_file(k).relative_to(rundir.root)), "bytes": size,
                "rows": len(result.rows), "scorer": worker.scorer_name, "prompt_indices": [p.index for p in prompts],
                "candidates": result.candidates, "dropped": result.dropped, "unpaired": result.unpaired,
                "samples": result.samples,
                "seconds": round(time.perf_counter() - started, 4), "process": rank, "processes": world,
                "device": str(device), "threads": threads, "batch_size": job.runtime.batch_size,
            })
            rundir.refresh_manifest(job.pipeline, run.content)
            bar.set_postfix({"samples" if job.pairing.unpaired else "pairs": len(result.rows)}, refresh=False)
    return len(todo)


def _spawned(factory: JobFactory, config: Any, plugins: tuple[str, ...], rank: int, world: int, errors: Any) -> None:
    """Entry point of a worker process started with runtime.processes > 1."""
    try:
        for module in plugins:
            importlib.import_module(module)
        run_worker(_prepare(factory(config)), rank, world)
    except UserError as err:
        errors.put((rank, str(err)))
        sys.exit(2)
    except BaseException:
        traceback.print_exc()
        errors.put((rank, "crashed (traceback above)"))
        sys.exit(1)


def _run_spawned(factory: JobFactory, config: Any, run: _Run) -> None:
    """Start processes 1..N-1 (spawn: safe with CUDA and OpenMP) and work as process 0 meanwhile."""
    import multiprocessing

    job = run.job
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.SimpleQueue()
    world = job.runtime.processes
    procs = [ctx.Process(target=_spawned, args=(factory, config, job.plugin_modules, r, world, errors),
                         name=f"mmpref-generate-{r}") for r in range(1, world)]
    threads = torch.get_num_threads()
    try:
        for proc in procs:
            proc.start()
        try:
            run_worker(run, 0, world)
        except UserError as err:
            errors.put((0, str(err)))
        for proc in procs:
            proc.join()
    finally:
        torch.set_num_threads(threads)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()
    failed = []
    while not errors.empty():
        failed.append(errors.get())
    codes = {rank: p.exitcode for rank, p in enumerate(procs, start=1) if p.exitcode}
    if failed or codes:
        rank, message = sorted(failed)[0] if failed else (min(codes), f"exited with status {codes[min(codes)]}")
        raise UserError(f"worker process {rank + 1} of {world} failed: {message} "
                        "(re-run the same command to continue from the complete shards)")


def run_generation(factory: JobFactory, config: Any) -> dict[str, Any]:
    """`mmpref generate` for any pipeline: returns the summary (also written to summary.json)."""
    from accelerate import PartialState

    from mmpref.pipelines.report import finalize, written_phrase

    job = factory(config)
    run = _prepare(job)
    rundir = run.directory
    # On a machine without CUDA (or with device: cpu) accelerate only recognises a torchrun/`accelerate
    # launch` start as multi-process when asked for CPU (gloo); otherwise each process would think it is alone.
    state = PartialState(cpu=job.runtime.device == "cpu" or not torch.cuda.is_available())
    if state.is_main_process:
        resumed = rundir.start(job.pipeline, run.content)
        rundir.clean_temporaries()
        import yaml

        (rundir.root / "config.yaml").write_text(yaml.safe_dump(job.config, sort_keys=False))
        done = len(rundir.complete_shards())
        if resumed:
            print(f"resuming {rundir.root}: {done}/{len(run.shards)} shards complete", file=sys.stderr)
    state.wait_for_everyone()
    if state.num_processes > 1:
        if not state.is_main_process:
            rundir.start(job.pipeline, run.content)  # checks the plan the main process wrote
        run_worker(run, state.process_index, state.num_processes, state.device
                   if job.runtime.device == "auto" else pick_device(job.runtime.device, state.process_index))
        state.wait_for_everyone()
    elif job.runtime.processes > 1:
        _run_spawned(factory, config, run)
    else:
        run_worker(run, 0, 1)
    if not state.is_main_process:
        return {}
    summary = finalize(rundir, run.prompts, job, run.content)
    samples = summary["samples"]
    print(f"wrote {written_phrase(summary)} from {summary['prompts']['used']} prompts ({samples['failed']} of "
          f"{samples['requested']} samples failed) to {rundir.data_dir}; report: {rundir.root / 'summary.json'}")
    return summary

