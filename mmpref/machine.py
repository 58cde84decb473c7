"""What machine a run's timings come from: CPU model, the vector instructions torch uses, cores, GPUs.

The same 2-core demo takes 381 s on one CPU and 581-613 s on another (AVX-512 against AVX2 only), so a
wall time means little without this beside it; `mmpref env` prints it and demo reports record it.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name ("AMD EPYC 7B13"); platform.processor() where /proc/cpuinfo is missing."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe_machine() -> dict[str, Any]:
    """A JSON-ready record: cpu, cpu_capability (torch's kernel level: AVX2, AVX512, ...), cores, the torch
    version and the CUDA devices, if any."""
    import torch

    from mmpref.pipelines.engine import cpu_cores

    return {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": cpu_cores(),
        "torch": torch.__version__,
        "cuda": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
    }


def machine_line(record: dict[str, Any]) -> str:
    """One line for logs: "2 cores of AMD EPYC 7B13 (AVX2)", GPUs appended."""
    line = f"{record['cores']} cores of {record['cpu']} ({record['cpu_capability']})"
    if record.get("cuda"):
        line += ", " + ", ".join(record["cuda"])
    return line
