"""Training-step time on CPU with subnormal floats flushed to zero (the trainer's CPU default) and without.

When a preference loss saturates (Diffusion-DPO at beta 20000 puts many pairs at margins of +-100),
-log sigmoid's gradient there is ~e^-100: below float32's smallest normal number (1.2e-38). Back-propagated
through the UNet, whole gradient tensors become subnormal, and x86 CPUs handle those in slow microcode.
`mmpref.training.setup.make_accelerator` therefore calls `torch.set_flush_denormal(True)` on CPU. This prints,
side by side in one process, the seconds per forward + backward of the shipped audio base's UNet (batch 32)
under a saturated loss and under an unsaturated one, each with flushing off and on, and the ratios (goal:
flushing makes the saturated step about as fast as the unsaturated one, and changes no normal-range gradient).

    python benchmarks/bench_flush_denormal.py            # 3 timed steps per case after 2 warm-up steps
    python benchmarks/bench_flush_denormal.py --steps 10 --threads 2

Measured (2026-12-07, 2 CPU cores, a training job on the other core, 1 thread, 3 steps): saturated 26.18 s/step
without flushing, 0.88 with it (29.9x); unsaturated 0.84 and 0.84 (0.99x), gradients identical. Idle
machine, 2 steps: saturated 14.89 -> 0.55 s/step (27.2x), unsaturated 0.55 -> 0.56 (0.99x), identical. Only some of
a real batch's pairs sit in the subnormal band, so at the trainer level the same day `mmpref train audio_dpo`
with beta 20000 ran 1.27-1.47 s/step without flushing and 0.79 s/step with it (beta 5000: 0.76 s/step).
"""

from __future__ import annotations

import argparse
import os
import time

from mmpref.machine import describe_machine, machine_line

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


SATURATED = "saturated (margins 70-95)"
UNSATURATED = "unsaturated (margins -3-3)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (a saturated one without flushing takes ~25 s)")
    parser.add_argument("--batch", type=int, default=32, help="clips per step (16 pairs)")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def step_seconds(unet, batch: dict, margins: tuple[float, float], flush: bool, steps: int) -> tuple[float, dict]:
    """Mean seconds per forward + backward of -log sigmoid(error difference scaled to the pairs' margins,
    spread evenly over `margins`), and the gradients."""
    import torch

    torch.set_flush_denormal(flush)
    times = []
    for i in range(steps + 2):
        unet.zero_grad(set_to_none=True)
        tic = time.perf_counter()
        pred = unet(batch["z"], batch["t"], encoder_hidden_states=batch["cond"]).sample
        err = (pred - batch["target"]).pow(2).mean(dim=(1, 2, 3))
        half = len(err) // 2
        # Scaled so that pair k's loss argument is margin k whatever the errors: its gradient factor is sigmoid(-margin k).
        diff = err[half:] - err[:half]
        margin = torch.linspace(*margins, half)
        loss = -torch.nn.functional.logsigmoid(margin * diff / diff.detach().abs().clamp_min(1e-12)).mean()
        loss.backward()
        if i >= 2:
            times.append(time.perf_counter() - tic)
    grads = {n: p.grad.detach().clone() for n, p in unet.named_parameters() if p.grad is not None}
    return sum(times) / len(times), grads


def main() -> None:
    import torch

    from mmpref.sandbox.audio_base.base import load_audio_base

    args = parse_args()
    torch.set_num_threads(args.threads)
    unet = load_audio_base("cpu", torch.float32).unet.train().requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    size = tuple(unet.config.sample_size)
    batch = {
        "z": torch.randn(args.batch, unet.config.in_channels, *size, generator=gen),
        "t": torch.randint(0, 1000, (args.batch,), generator=gen),
        "cond": torch.randn(args.batch, 8, unet.config.cross_attention_dim, generator=gen),
        "target": torch.randn(args.batch, unet.config.out_channels, *size, generator=gen),
    }
    rows = {}
    for name, margins in ((SATURATED, (70.0, 95.0)), (UNSATURATED, (-3.0, 3.0))):
        off, grads_off = step_seconds(unet, batch, margins, False, args.steps)
        on, grads_on = step_seconds(unet, batch, margins, True, args.steps)
        normal = min(float(g.abs().max()) for g in grads_off.values()) >= 1.2e-38
        same = all(torch.equal(grads_off[n], grads_on[n]) for n in grads_off) if normal else None
        rows[name] = (off, on, same)
    torch.set_flush_denormal(False)
    print(f"UNet forward + backward, batch {args.batch}, {args.threads} thread(s), {args.steps} steps per case, "
          f"on {machine_line(describe_machine())}")
    print(f"{'loss':28s} {'no flush s/step':>16s} {'flush s/step':>13s} {'speed-up':>9s}")
    for name, (off, on, _) in rows.items():
        print(f"{name:28s} {off:16.3f} {on:13.3f} {off / on:8.2f}x")
    base = rows[UNSATURATED][1]
    print(f"saturated / unsaturated step time: {rows[SATURATED][0] / base:.2f}x without flushing, "
          f"{rows[SATURATED][1] / base:.2f}x with it")
    same = rows[UNSATURATED][2]
    print(f"unsaturated gradients identical with and without flushing: {same}")


if __name__ == "__main__":
    main()
