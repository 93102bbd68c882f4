"""Training throughput of the paper-size networks: samples/s, peak memory, FLOPs per sample and MFU.

Each model (default ``model`` config = Table 1 sizes) takes a few Adam steps of its real training loss
(:class:`hcrlc.training.TrainingObjective`) on random inputs, twice in one run:

* on CUDA — baseline: fp32, NCHW (PyTorch's default TF32 settings, not ``train_model``'s ``precision: fp32``,
  which turns TF32 off); ours: what ``train_model`` does with ``precision: bf16`` (bf16 autocast +
  channels_last), both at ``--batch``;
* on CPU — baseline: the same fp32 step at half the batch; ours: at ``--batch`` (bf16 is CUDA-only).

It prints both rows and the ratio ours / baseline. FLOPs per training sample (forward + backward, and for
``hcr_c_net`` the frozen HCR-Net's forward) are counted once with
``torch.utils.flop_counter.FlopCounterMode`` on the meta device; MFU = FLOPs/sample · samples/s / the card's
dense bf16 peak (table below; the fp32 baseline's MFU is also quoted against the bf16 peak, so the two are
comparable). Peak memory: CUDA
``max_memory_allocated`` per configuration; on CPU the process's peak RSS so far (``ru_maxrss``), which only
grows, so later rows include earlier ones.

    python benchmarks/train_throughput.py --models lc_net hcr_net --batch 64 --steps 3
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from hcrlc.losses import make_weighting
from hcrlc.models import MODEL_DEFAULTS, build_model, count_parameters
from hcrlc.paper import LEARNING_RATE, MODEL_NAMES, WEIGHT_DECAY
from hcrlc.training import TrainingObjective, resolve_device

#: Dense bf16 tensor-core peak, FLOP/s, from NVIDIA's data sheets; the first substring found in the name wins.
BF16_PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.4e12),
    ("H100 PCIe", 756.5e12),
    ("H100 NVL", 835.5e12),
    ("H100", 989.4e12),  # SXM
    ("A100", 312e12),
)


def bf16_peak(device: torch.device) -> tuple[str, float | None]:
    """The device's name and dense bf16 peak (None when unknown, e.g. on CPU)."""
    if device.type != "cuda":
        return "CPU", None
    name = torch.cuda.get_device_name(device)
    return name, next((peak for key, peak in BF16_PEAK_FLOPS if key in name), None)


def random_batch(n: int, size: int, device: torch.device) -> list[torch.Tensor]:
    """``x``, ``s2``, ``mask``, ``y`` of a TripletDataset batch, random."""
    x = torch.rand(n, 15, size, size, device=device)
    return [x, torch.rand(n, 13, size, size, device=device),
            (torch.rand(n, 1, size, size, device=device) < 0.5).float(),
            (torch.rand(n, 10, device=device) < 0.3).float()]


def make_objective(name: str, size: int) -> TrainingObjective:
    """Model ``name`` at the paper's size (default ``model`` config) with its training loss."""
    return TrainingObjective(name, build_model(name, MODEL_DEFAULTS, patch_size=size), make_weighting(name))


def flops_per_sample(name: str, size: int) -> int:
    """Forward + backward FLOPs of one training sample, counted on the meta device (nothing is computed)."""
    meta = torch.device("meta")
    with meta:
        objective = make_objective(name, size)
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = objective(*random_batch(1, size, meta))
        loss.backward()
    return counter.get_total_flops()


def measure(
    name: str, *, batch: int, size: int, steps: int, warmup: int, device: torch.device, amp: bool
) -> dict[str, float]:
    """Samples/s and peak memory of ``steps`` Adam steps after ``warmup`` untimed ones."""
    torch.manual_seed(0)
    objective = make_objective(name, size).to(device)
    if amp:
        objective = objective.to(memory_format=torch.channels_last)
    trainable = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    x, s2, mask, y = random_batch(batch, size, device)
    if amp:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)

    def step() -> None:
        with autocast:
            loss, _ = objective(x, s2, mask, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    peak = (torch.cuda.max_memory_allocated(device) if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux reports KiB
    return {"batch": batch, "samples_per_s": batch * steps / seconds, "peak_gib": peak / 2**30}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--batch", type=int, default=64, help="samples per step (paper: 64)")
    parser.add_argument("--size", type=int, default=256, help="patch side in pixels (paper: 256)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    card, peak = bf16_peak(device)
    cuda = device.type == "cuda"
    print(f"device: {card}" + (f" (dense bf16 peak {peak / 1e12:.1f} TFLOP/s)" if peak else "")
          + f"; torch {torch.__version__}; {torch.get_num_threads()} CPU threads")
    if cuda:
        baseline = {"label": "fp32 NCHW", "batch": args.batch, "amp": False}
        ours = {"label": "bf16+channels_last", "batch": args.batch, "amp": True}
    else:
        baseline = {"label": "fp32 half batch", "batch": max(1, args.batch // 2), "amp": False}
        ours = {"label": "fp32", "batch": args.batch, "amp": False}
    header = f"{'model':<18}{'trainable':>13}  {'config':<20}{'batch':>6}{'samples/s':>11}{'peak GiB':>10}" \
             f"{'GFLOP/sample':>14}{'MFU':>8}"
    print(header)
    print("-" * len(header))
    for name in args.models:
        with torch.device("meta"):
            n_params = count_parameters(build_model(name, MODEL_DEFAULTS, patch_size=args.size))
        flops = flops_per_sample(name, args.size)
        results = []
        for config in (baseline, ours):
            result = measure(name, batch=config["batch"], size=args.size, steps=args.steps,
                             warmup=args.warmup, device=device, amp=config["amp"])
            mfu = f"{100 * flops * result['samples_per_s'] / peak:.1f}%" if peak else "n/a"
            print(f"{name:<18}{n_params:>13,}  {config['label']:<20}{result['batch']:>6}"
                  f"{result['samples_per_s']:>11.2f}{result['peak_gib']:>10.2f}{flops / 1e9:>14.1f}{mfu:>8}")
            results.append(result)
            if device.type == "cuda":
                torch.cuda.empty_cache()  # the measured model is gone: give its memory back before the next
        ratio = results[1]["samples_per_s"] / results[0]["samples_per_s"]
        print(f"{'':<33}ratio ours / baseline: {ratio:.2f}x")


if __name__ == "__main__":
    main()
