"""Training throughput of the paper-size networks: samples/s, peak memory, FLOPs per sample and MFU.

Each model (default ``model`` config = Table 1 sizes) takes a few Adam steps of its real training loss
(:class:`hcrlc.training.TrainingObjective`) on random inputs, twice in one run:

* on CUDA — baseline: fp32, NCHW (PyTorch's default TF32 settings, not ``train_model``'s ``precision: fp32``,
  which turns TF32 off); ours: what ``train_model`` does with ``precision: bf16`` (bf16 autocast +
  channels_last), both at ``--batch``;
* on CPU — baseline: the same fp32 step at half the batch; ours: at ``--batch`` (bf16 is CUDA-only).

It prints both rows and the ratio ours / baseline. FLOPs per training sample (forward + backward, and for
``hcr_c_net`` the frozen HCR-Net's forward) are counted once with
``torch.utils.flop_counter.FlopCounterMode`` on the meta device (convolutions and matrix products only: the
element-wise work is left out, as usual for MFU); MFU = FLOPs/sample · samples/s / the card's dense bf16 peak
(table :data:`PEAK_FLOPS`; the fp32 baseline's MFU is also quoted against the bf16 peak, so the two are
comparable). Peak memory: CUDA ``max_memory_allocated`` per configuration; on CPU the process's peak RSS so far
(``ru_maxrss``), which only grows, so later rows include earlier ones.

The pieces (:func:`measure`, :func:`make_step`, :func:`time_steps`, :func:`card_peaks`, :func:`precision`)
are also used by ``benchmarks/gpu_check.py``.

    python benchmarks/train_throughput.py --models lc_net hcr_net --batch 64 --steps 3
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from hcrlc.losses import make_weighting
from hcrlc.model_specs import MODEL_NAMES
from hcrlc.models import MODEL_DEFAULTS, build_model, count_parameters
from hcrlc.paper import LEARNING_RATE, WEIGHT_DECAY
from hcrlc.training import TrainingObjective, resolve_device

#: Dense (no sparsity) peak FLOP/s per precision from NVIDIA's data sheets; the first substring of the device name
#: found wins, so more specific names come first. ``fp32`` is the CUDA-core (non-tensor) rate, ``tf32`` and
#: ``bf16`` the tensor-core rates; the data sheets print the tensor-core rates with sparsity, halved here.
#: H100/H200 SXM: "NVIDIA H100 Tensor Core GPU" and "NVIDIA H200 Tensor Core GPU" data sheets (FP32 67 TFLOPS,
#: TF32 989 / BF16 1,979 TFLOPS with sparsity); H100/H200 NVL and H100 PCIe: same sheets (FP32 60 / 51, TF32 835 /
#: 756, BF16 1,671 / 1,513 with sparsity); A100 (SXM and PCIe, 40 and 80 GB): "NVIDIA A100 Tensor Core GPU" data
#: sheet (FP32 19.5, TF32 156, BF16 312 dense). A measured bf16 GEMM reaches ~80 % of these on an H200, so an MFU
#: near 0.8 is the practical ceiling, not 1.
PEAK_FLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200 NVL", {"fp32": 60e12, "tf32": 417.5e12, "bf16": 835.5e12}),
    ("H200", {"fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12}),  # SXM
    ("H100 PCIe", {"fp32": 51e12, "tf32": 378e12, "bf16": 756.5e12}),
    ("H100 NVL", {"fp32": 60e12, "tf32": 417.5e12, "bf16": 835.5e12}),
    ("H100", {"fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12}),  # SXM
    ("A100", {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12}),
)
#: What each precision runs: fp32 = IEEE float32 everywhere (TF32 off for matmuls and cuDNN convolutions);
#: tf32 = float32 tensors, TF32 tensor cores for matmuls and convolutions; bf16 = what ``train_model`` does with
#: ``amp: true`` on CUDA (bf16 autocast, channels_last), TF32 off for what autocast leaves in float32.
PRECISIONS = ("fp32", "tf32", "bf16")


def peaks_of(name: str) -> dict[str, float | None]:
    """Dense peak FLOP/s per precision of the card called ``name`` (None for each when it is not in the table)."""
    return next((dict(peaks) for key, peaks in PEAK_FLOPS if key in name), dict.fromkeys(PRECISIONS))


def card_peaks(device: torch.device) -> tuple[str, dict[str, float | None]]:
    """The device's name and its dense peak FLOP/s per precision (None where unknown, e.g. on CPU)."""
    if device.type != "cuda":
        return "CPU", dict.fromkeys(PRECISIONS)
    name = torch.cuda.get_device_name(device)
    return name, peaks_of(name)


@contextlib.contextmanager
def precision(kind: str, device: torch.device) -> Iterator[tuple[contextlib.AbstractContextManager, bool]]:
    """Set the float32 matmul/convolution mode of ``kind`` (one of :data:`PRECISIONS`) for the block; yield the
    autocast context to run the forward pass in and whether inputs and model go channels_last."""
    if kind not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {kind!r}")
    # the legacy flags on purpose: torch >= 2.9 also has per-backend ``fp32_precision``, but once that is set, reads
    # of the legacy flags (which torch itself still does in places, e.g. Inductor's conv templates) raise; setting
    # the legacy flags keeps both APIs readable
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = kind == "tf32"
    try:
        bf16 = kind == "bf16"
        yield torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16), bf16
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def random_batch(n: int, size: int, device: torch.device) -> list[torch.Tensor]:
    """``x``, ``s2``, ``mask``, ``y`` of a TripletDataset batch, random."""
    x = torch.rand(n, 15, size, size, device=device)
    return [x, torch.rand(n, 13, size, size, device=device),
            (torch.rand(n, 1, size, size, device=device) < 0.5).float(),
            (torch.rand(n, 10, device=device) < 0.3).float()]


def make_objective(name: str, size: int, model_cfg: Mapping[str, Any] | None = None) -> TrainingObjective:
    """Model ``name`` (``model_cfg``, default: the paper's size) with its training loss."""
    return TrainingObjective(name, build_model(name, model_cfg or MODEL_DEFAULTS, patch_size=size),
                             make_weighting(name))


def flops_per_sample(name: str, size: int, model_cfg: Mapping[str, Any] | None = None) -> int:
    """Forward + backward FLOPs of one training sample, counted on the meta device (nothing is computed)."""
    meta = torch.device("meta")
    with meta:
        objective = make_objective(name, size, model_cfg)
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = objective(*random_batch(1, size, meta))
        loss.backward()
    return counter.get_total_flops()


def make_trainable(
    name: str, size: int, device: torch.device, *, channels_last: bool, model_cfg: Mapping[str, Any] | None = None
) -> tuple[TrainingObjective, torch.optim.Optimizer]:
    """:func:`make_objective` on ``device`` (channels_last if asked, as ``amp`` trains) and its Adam optimiser
    with the paper's learning rate and weight decay over the trainable parameters, as ``train_model`` makes it."""
    with device:  # weights initialised on the device: seconds faster for the paper-size networks
        objective = make_objective(name, size, model_cfg)
    if channels_last:
        objective = objective.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad], lr=LEARNING_RATE,
                                 weight_decay=WEIGHT_DECAY)
    return objective, optimizer


def make_step(
    objective: torch.nn.Module, optimizer: torch.optim.Optimizer, autocast: contextlib.AbstractContextManager
) -> Callable[..., torch.Tensor]:
    """One Adam step of ``objective`` (``TrainingObjective`` or its compiled wrapper) on a batch, as
    ``train_model`` takes it: ``step(x, s2, mask, y)`` returns the detached loss (no host sync)."""

    def step(x: torch.Tensor, s2: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast:
            loss, _ = objective(x, s2, mask, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def time_steps(
    step: Callable[[], Any], device: torch.device, *, warmup: int, steps: int, max_seconds: float | None = None
) -> tuple[int, float, float]:
    """Run ``warmup`` untimed calls of ``step``, then up to ``steps`` timed ones, stopping early once
    ``max_seconds`` have passed (at least one timed call). Returns (timed calls, their seconds, warm-up seconds);
    on CUDA both are measured to the end of the queued work."""
    cuda = device.type == "cuda"
    started = time.perf_counter()
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    warm = time.perf_counter() - started
    started = time.perf_counter()
    done = 0
    while done < steps:
        step()
        done += 1
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
    if cuda:
        torch.cuda.synchronize(device)
    return done, time.perf_counter() - started, warm


def peak_memory_gib(device: torch.device) -> float:
    """CUDA: ``max_memory_allocated`` since the last reset; CPU: the process's peak RSS so far (only grows)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30  # Linux reports KiB


def measure(
    name: str,
    *,
    batch: int,
    size: int,
    steps: int,
    warmup: int,
    device: torch.device,
    kind: str = "fp32",
    compile_backend: str | None = None,
    model_cfg: Mapping[str, Any] | None = None,
    max_seconds: float | None = None,
) -> dict[str, float]:
    """Samples/s and peak memory of up to ``steps`` Adam steps (``max_seconds`` caps them) after ``warmup``
    untimed ones, on random inputs, in precision ``kind`` (:data:`PRECISIONS`); ``compile_backend`` wraps the
    objective in ``torch.compile`` with that backend, as ``training.compile`` does (``inductor``)."""
    torch.manual_seed(0)
    cuda = device.type == "cuda"
    with precision(kind, device) as (autocast, channels_last):
        objective, optimizer = make_trainable(name, size, device, channels_last=channels_last, model_cfg=model_cfg)
        runner = torch.compile(objective, backend=compile_backend) if compile_backend else objective
        x, s2, mask, y = random_batch(batch, size, device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        step = make_step(runner, optimizer, autocast)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        n, seconds, warm = time_steps(lambda: step(x, s2, mask, y), device, warmup=warmup, steps=steps,
                                      max_seconds=max_seconds)
    return {"batch": batch, "steps": n, "seconds": seconds, "warmup_seconds": warm,
            "samples_per_s": batch * n / seconds, "peak_gib": peak_memory_gib(device)}


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
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as train_model sets it when not deterministic
    card, peaks = card_peaks(device)
    peak = peaks["bf16"]
    cuda = device.type == "cuda"
    print(f"device: {card}" + (f" (dense bf16 peak {peak / 1e12:.1f} TFLOP/s)" if peak else "")
          + f"; torch {torch.__version__}; {torch.get_num_threads()} CPU threads")
    if cuda:
        baseline = {"label": "fp32 NCHW", "batch": args.batch, "kind": "fp32"}
        ours = {"label": "bf16+channels_last", "batch": args.batch, "kind": "bf16"}
    else:
        baseline = {"label": "fp32 half batch", "batch": max(1, args.batch // 2), "kind": "fp32"}
        ours = {"label": "fp32", "batch": args.batch, "kind": "fp32"}
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
                             warmup=args.warmup, device=device, kind=config["kind"])
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
