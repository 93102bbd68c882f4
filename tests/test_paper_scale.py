"""benchmarks/paper_scale.py: its FLOP counts agree with an analytic count of the layers, its workload follows the
config, and its sizing names the resource that binds."""

from __future__ import annotations

import sys

import pytest
import torch
import yaml
from torch import nn

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from paper_scale import (  # benchmarks/ is not a package: on the path above
    PAPER,
    PAPER_MODELS,
    forward_flops_per_sample,
    sizing,
    workload,
)

from hcrlc.models import build_model, resolve_model_config
from hcrlc.paper import PATCH_SIZE


def analytic_forward_flops(name: str, model_cfg: dict) -> int:
    """2 x multiply-accumulates of every convolution, transposed convolution and linear layer, from the layer
    shapes and the output sizes seen by forward hooks (independent of torch's FLOP formulas)."""
    with torch.device("meta"):
        model = build_model(name, model_cfg, PATCH_SIZE)
        x = torch.empty(1, 15, PATCH_SIZE, PATCH_SIZE)
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):  # every input pixel scatters a k x k x out kernel
            h, w = inputs[0].shape[-2:]
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * module.in_channels * module.out_channels // module.groups * k * h * w
        elif isinstance(module, nn.Conv2d):
            h, w = output.shape[-2:]
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * module.in_channels // module.groups * module.out_channels * k * h * w
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(x)
    return total


@pytest.fixture(scope="module")
def paper_cfg() -> dict:
    return yaml.safe_load(PAPER.read_text())


@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_forward_flops_agree_with_an_analytic_layer_count(name: str, paper_cfg: dict) -> None:
    model_cfg = resolve_model_config(paper_cfg["model"])
    counted = forward_flops_per_sample(name, model_cfg)
    assert counted == analytic_forward_flops(name, model_cfg)
    assert 20e9 < counted < 80e9  # the paper-size networks: tens of GFLOP per 256 x 256 sample


def test_workload_follows_the_config(paper_cfg: dict) -> None:
    runs = workload(paper_cfg, n_trainval=1000)
    n_train = 900  # val_fraction 0.1
    by_run = {r["run"]: r for r in runs}
    assert by_run["lc_net"]["train"] == 10 * n_train and by_run["pretext"]["train"] == 20 * n_train
    assert by_run["ssl_on_25 frozen"]["train"] == 5 * 225 and by_run["ssl_on_25 finetune"]["train"] == 10 * 225
    assert by_run["ssl_off_50"]["train"] == 10 * 450
    # 5 models x 10 + pretext 20 + ssl_on 15 x 2.5 + ssl_off 10 x 2.5 = 132.5 epochs of the training split
    assert sum(r["train"] for r in runs) == pytest.approx(132.5 * n_train)
    cfg = dict(paper_cfg, training=dict(paper_cfg["training"], epochs=7))
    assert {r["train"] for r in workload(cfg, 1000) if r["run"].startswith("ssl_off")} == {7 * 225, 7 * 450,
                                                                                           7 * 675, 7 * 900}


def test_sizing_names_what_binds() -> None:
    flops = {k: {"fwd": 1e9, "train": 3e9} for k in [*PAPER_MODELS, "hcr_lc_uncertain", "pretext", "ssl_frozen"]}
    runs = [{"run": "lc_net", "flops": "lc_net", "train": 1000, "val": 100}]
    loader = {"bytes_per_sample": 4_000_000, "getitems": {"warm": {"per_cpu_s_median": 100.0}}}

    def bound(cores: int, disk: float) -> set[str]:
        return {r["bound_by"] for r in sizing(flops, runs, loader, 0.4, cores, disk, None)
                if r["card"] == "H100" and r["precision"] == "bf16"}

    # H100 bf16 at MFU 0.4: 989.4e12 * 0.4 / 3e9 = 131,920 samples/s
    assert bound(10_000, 1e6) == {"GPU"}
    assert bound(10, 1e6) == {"CPU"}
    assert bound(10_000, 1.0) == {"disk"}
    row = sizing(flops, runs, loader, 0.4, 16, 2.0, None)[0]
    assert row["paper_gpu_hours"] == pytest.approx((1000 * 3e9 + 100 * 1e9) / (0.4 * 19.5e12) / 3600)
    squeezed = sizing(flops, runs, loader, 0.4, 10_000, 1.0, {"ratio": 2.0, "decode_gbps_per_core": 1.0})[0]
    assert squeezed["read_gbps"] < row["read_gbps"]  # compression reads fewer bytes, at more CPU per sample
    assert squeezed["loader_cores"] > row["loader_cores"]
