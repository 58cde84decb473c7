"""Objective state under data parallelism: two gloo processes end with the state one process gets on their
union (LCPO's learned noise rate, BCO's reward baseline, KTO's reference point), so every rank agrees
and rank 0's checkpoint is the run's state."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmpref.objectives import PairwiseInputs, UnpairedInputs, build_objective

GEN = torch.Generator().manual_seed(0)
PAIRS = [torch.randn(6, generator=GEN) for _ in range(4)]  # policy/reference chosen/rejected logps, 6 pairs
SINGLE = [torch.randn(6, generator=GEN) for _ in range(2)]  # policy, reference logps, 6 samples
DESIRABLE = torch.tensor([True, False, True, True, False, False])


def run_objectives(rows: slice) -> dict[str, torch.Tensor]:
    """Two training steps of each stateful objective on `rows` of the fixed batch; their state and losses."""
    lcpo = build_objective("lcpo", beta=0.5, lcpo_alpha=0.5).train()
    bco = build_objective("bco", beta=0.5).train()
    kto = build_objective("kto", beta=0.5).train()
    pairs = PairwiseInputs(*(t[rows] for t in PAIRS))
    single = UnpairedInputs(policy=SINGLE[0][rows], reference=SINGLE[1][rows], desirable=DESIRABLE[rows])
    for _ in range(2):
        lcpo(pairs)
        bco(single)
        kto_losses = kto(single).losses
    return {"eta": lcpo.state_dict()["labels.eta"].clone(), "delta": bco.reward_mean.clone(), "count": bco.reward_count.clone(), "kto": kto_losses.detach()}


def worker(rank: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        # Plain lists: a tensor sent through a torch queue is shared by file descriptor, which the parent
        # can no longer open once this process has exited.
        state = run_objectives(slice(3 * rank, 3 * rank + 3))
        queue.put((rank, {key: value.tolist() for key, value in state.items()}))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_agree_with_one_process_on_the_union():
    single = run_objectives(slice(0, 6))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=worker, args=(rank, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results = {rank: {key: torch.tensor(value) for key, value in state.items()}
               for rank, state in (queue.get(timeout=120) for _ in procs)}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for rank in (0, 1):
        torch.testing.assert_close(results[rank]["eta"], single["eta"])
        torch.testing.assert_close(results[rank]["delta"], single["delta"])
        assert int(results[rank]["count"]) == int(single["count"]) == 12
    torch.testing.assert_close(torch.cat([results[0]["kto"], results[1]["kto"]]), single["kto"])
    # Without the reduction each rank's η would follow its own half of the batch.
    assert not torch.allclose(run_objectives(slice(0, 3))["eta"], single["eta"])
