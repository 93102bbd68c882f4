"""The five networks: Table 1 counts, output shapes, size checks, the frozen HCR-Net of HCR-Net + C-Net."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from conftest import DEMO_MODEL as SMALL  # the demo's scale model: depth 1, a 5-pool C-Net
from conftest import DEMO_PATCH
from hcrlc.errors import CheckpointError, ConfigError
from hcrlc.losses import make_weighting
from hcrlc.model_specs import CLASSIFIERS, MODELS, TRAINABLE
from hcrlc.models import (
    LOGITS,
    MODEL_DEFAULTS,
    MODEL_NAMES,
    CNet,
    HcrCNet,
    build_model,
    count_parameters,
    learnable_parameters,
)
from hcrlc.paper import PATCH_SIZE, TABLE1_PARAMS, TABLE2
from hcrlc.training.checkpoints import build_network

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

#: Depth 4 and three classification convs like the paper, narrow: the size checks depend on these two numbers.
DEPTH4 = {"widths": [4, 4, 4, 4, 8], "cls_widths": [8, 8, 8], "cnet_layers": [4, "M", 4, "M"],
          "cnet_hidden": [8]}
#: Even smaller, for tests that backpropagate.
TINY = {"widths": [4, 8, 8], "cls_widths": [8], "cnet_layers": [8, "M", 8, "M"], "cnet_hidden": [16]}

HEADS = {
    "lc_net": ("logits",),
    "hcr_net": ("recon",),
    "hcr_lc_equal": ("recon", "logits"),
    "hcr_lc_uncertain": ("recon", "logits"),
    "hcr_c_net": ("recon", "logits"),
}


def _batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 15, size, size, generator=g)
    x[:, 13:] = torch.randn(n, 2, size, size, generator=g)
    return x


# --- Table 1 ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "row"), [("lc_net", "lc_net"), ("hcr_lc_equal", "hcr_lc"), ("hcr_lc_uncertain", "hcr_lc"),
                      ("hcr_c_net", "hcr_c_net")]
)
def test_default_config_reproduces_table1_exactly(name: str, row: str) -> None:
    assert learnable_parameters(name, {}, PATCH_SIZE) == TABLE1_PARAMS[row]


def test_table1_counts_frozen_hcr_net_but_training_does_not() -> None:
    with torch.device("meta"):
        model = build_model("hcr_c_net", {}, PATCH_SIZE)
        hcr = build_model("hcr_net", {}, PATCH_SIZE)
    assert isinstance(model, HcrCNet)
    n_hcr = count_parameters(hcr)
    assert count_parameters(model, trainable_only=False) == TABLE1_PARAMS["hcr_c_net"]
    assert count_parameters(model) == TABLE1_PARAMS["hcr_c_net"] - n_hcr == count_parameters(model.cnet)


def test_model_defaults_equal_schema_defaults() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    props = schema["properties"]["model"]["properties"]
    assert {key: spec["default"] for key, spec in props.items()} == MODEL_DEFAULTS


def test_buffers_are_not_parameters() -> None:
    bn = nn.BatchNorm2d(4)
    assert count_parameters(bn) == 8  # weight + bias; running mean/var/count are buffers


def test_architecture_details_follow_the_authors_code() -> None:
    with torch.device("meta"):
        model = build_model("hcr_lc_equal", {}, PATCH_SIZE)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.encoder.modules()) == 2 * 5
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.decoder.modules())
    assert all(m.bias is not None for m in model.encoder.modules() if isinstance(m, nn.Conv2d))
    decoder_convs = [m for m in model.decoder.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all(m.bias is not None for m in decoder_convs)
    cls_convs = [m for m in model.classifier.convs if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.padding, c.bias) for c in cls_convs] == [
        (512, 1024, (0, 0), None), (1024, 2048, (0, 0), None), (2048, 4096, (0, 0), None)]
    assert (model.classifier.head.out_channels, model.classifier.head.kernel_size) == (10, (1, 1))
    assert (model.recon_head.in_channels, model.recon_head.out_channels) == (32, 13)
    with torch.device("meta"):
        cnet = build_model("hcr_c_net", {}, PATCH_SIZE).cnet
    linears = [m for m in cnet.classifier if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (32768, 2048), (2048, 4096), (4096, 10)]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in cnet.modules())


def test_each_decoder_level_concatenates_upsampled_then_skip_as_the_authors_unetup() -> None:
    # The upsampled path is made a constant 7 (transposed conv weights 0, bias 7); the skip is the encoder's
    # post-ReLU output, never constant. The first conv of each decoder level must see the 7s in its first
    # widths[i] input channels and the encoder's feature in the others: on the order [skip, upsampled] it fails.
    torch.manual_seed(0)
    model = build_model("hcr_net", TINY, patch_size=16).eval()
    seen: dict[str, torch.Tensor] = {}
    for level, (up, block) in enumerate(zip(model.decoder.ups, model.decoder.blocks)):
        nn.init.zeros_(up.weight)
        nn.init.constant_(up.bias, 7.0)
        block[0].register_forward_hook(lambda _m, inputs, _out, k=level: seen.__setitem__(f"in{k}", inputs[0]))
    for i, block in enumerate(model.encoder.blocks):
        block.register_forward_hook(lambda _m, _inputs, out, k=i: seen.__setitem__(f"enc{k}", out))
    with torch.no_grad():
        model(_batch(2, 16))
    widths = TINY["widths"]
    for level, i in enumerate(range(len(widths) - 2, -1, -1)):  # decoder levels from the centre up
        conv_in, skip = seen[f"in{level}"], seen[f"enc{i}"]
        assert conv_in.shape[1] == 2 * widths[i]
        assert torch.equal(conv_in[:, :widths[i]], torch.full_like(skip, 7.0))
        assert torch.equal(conv_in[:, widths[i]:], skip)
        assert skip.std() > 0


# --- forward shapes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_demo_models_run_on_the_demo_patches(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, SMALL, DEMO_PATCH).eval()
    assert model.heads == HEADS[name]
    with torch.no_grad():
        out = model(_batch(2, DEMO_PATCH))
    assert tuple(out) == HEADS[name]
    if "recon" in out:
        assert out["recon"].shape == (2, 13, DEMO_PATCH, DEMO_PATCH)
    if "logits" in out:
        assert out["logits"].shape == (2, 10)
    assert all(torch.isfinite(t).all() for t in out.values())


@pytest.mark.parametrize(("name", "size"), [("lc_net", 128), ("hcr_lc_uncertain", 112), ("hcr_net", 32),
                                            ("hcr_c_net", 64)])
def test_other_sizes_that_are_multiples_of_two_to_the_depth(name: str, size: int) -> None:
    model = build_model(name, DEPTH4, patch_size=size).eval()
    with torch.no_grad():
        out = model(_batch(1, size))
    if "recon" in out:
        assert out["recon"].shape == (1, 13, size, size)
    if "logits" in out:
        assert out["logits"].shape == (1, 10)


def test_a_64_px_depth_2_scale_model_keeps_the_papers_centre_and_branch_sizes() -> None:
    # the paper: 256 px, depth 4 -> 16 px centre -> 14 -> 12 -> 10 px; the scale model: 64 px, depth 2, the same
    sizes = {}
    for size, widths in ((256, [2, 2, 2, 2, 4]), (64, [2, 2, 4])):
        model = build_model("lc_net", {"widths": widths, "cls_widths": [4, 4, 4]}, patch_size=size).eval()
        seen = []
        hooks = [m.register_forward_hook(lambda _m, _i, out, seen=seen: seen.append(out.shape[-1]))
                 for m in model.classifier.convs if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            centre = model.encoder(_batch(1, size))[-1].shape[-1]
            model(_batch(1, size))
        for hook in hooks:
            hook.remove()
        sizes[size] = [centre, *seen]
    assert sizes[256] == sizes[64] == [16, 14, 12, 10]


def test_centre_too_small_for_classification_branch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="centre of a 64 px input is 4 px"):
        build_model("lc_net", DEPTH4, patch_size=64)
    model = build_model("lc_net", DEPTH4, patch_size=128)
    with pytest.raises(ConfigError, match="too small"):
        model(_batch(1, 96))
    build_model("hcr_net", DEPTH4, patch_size=16)  # no classification branch: any multiple of 16 works


def test_size_not_a_multiple_of_two_to_the_depth_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a multiple of 2\\*\\*4 = 16"):
        build_model("hcr_net", DEPTH4, patch_size=120)
    model = build_model("hcr_net", DEPTH4, patch_size=128)
    with pytest.raises(ConfigError, match="not a multiple"):
        model(_batch(1, 120))


def test_cnet_is_tied_to_its_patch_size() -> None:
    cnet = CNet([4, "M", 4, "M"], [8], 0.5, patch_size=16)
    assert cnet.classifier[0].in_features == 4 * 4 * 4
    with pytest.raises(ConfigError, match="patch_size=32"):
        cnet(_batch(1, 32))
    with pytest.raises(ConfigError, match="not divisible by 2\\*\\*2"):
        CNet([4, "M", 4, "M"], [8], 0.5, patch_size=18)


def test_unknown_names_and_keys_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("unet", {}, PATCH_SIZE)
    with pytest.raises(ConfigError, match="depth"):
        build_model("lc_net", {"depth": 3}, PATCH_SIZE)
    with pytest.raises(ConfigError, match="no classification head"):
        build_model("hcr_net", TINY, patch_size=16, n_classes=4)


# --- HCR-Net + C-Net ----------------------------------------------------------------------------------------

def test_hcr_c_net_trains_only_the_cnet() -> None:
    torch.manual_seed(0)
    model = build_model("hcr_c_net", TINY, patch_size=16)
    model.train()
    assert not model.hcr.training and model.cnet.training
    assert not any(p.requires_grad for p in model.hcr.parameters())
    assert count_parameters(model) == count_parameters(model.cnet)
    out = model(_batch(3, 16))
    assert out["recon"].shape == (3, 13, 16, 16) and not out["recon"].requires_grad
    out["logits"].sum().backward()
    assert all(p.grad is None for p in model.hcr.parameters())
    assert all(p.grad is not None for p in model.cnet.parameters())
    assert any(p.grad.abs().sum() > 0 for p in model.cnet.parameters())


def test_frozen_hcr_net_keeps_its_batchnorm_statistics() -> None:
    model = build_model("hcr_c_net", TINY, patch_size=16).train()
    before = {k: v.clone() for k, v in model.hcr.state_dict().items()}
    model(_batch(2, 16) * 5)
    after = model.hcr.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_load_hcr_state_uses_the_trained_hcr_net() -> None:
    torch.manual_seed(1)
    hcr = build_model("hcr_net", TINY, patch_size=16)
    hcr(_batch(4, 16, seed=2))  # one train-mode pass moves the BatchNorm running statistics
    hcr.eval()
    model = build_model("hcr_c_net", TINY, patch_size=16)
    model.load_hcr_state(hcr.state_dict())
    assert not any(p.requires_grad for p in model.hcr.parameters())
    x = _batch(2, 16, seed=3)
    with torch.no_grad():
        expected = hcr(x)["recon"]
    assert torch.equal(model(x)["recon"], expected)

    other = build_model("hcr_net", {**TINY, "widths": [4, 8, 16]}, patch_size=16)
    with pytest.raises(CheckpointError, match="same model.widths"):
        model.load_hcr_state(other.state_dict())


# --- pretext ------------------------------------------------------------------------------------------------

def test_pretext_model_has_four_outputs_and_shares_the_hcr_lc_keys() -> None:
    pretext = build_model("lc_net", TINY, patch_size=16, n_classes=4)
    assert pretext(_batch(2, 16))["logits"].shape == (2, 4)
    target = build_model("hcr_lc_uncertain", TINY, patch_size=16)
    source = {k: v for k, v in pretext.state_dict().items() if not k.startswith("classifier.head.")}
    missing, unexpected = target.load_state_dict(source, strict=False)
    assert unexpected == []
    assert all(k.startswith(("decoder.", "recon_head.", "classifier.head.")) for k in missing)
    assert torch.equal(target.encoder.blocks[0][0].weight, pretext.encoder.blocks[0][0].weight)


def test_cnet_weights_are_kaiming_normal_as_the_authors_initialise_them() -> None:
    # authors' C_Net.py: kaiming_normal_ (fan-in, gain sqrt 2) on every Conv2d and Linear weight
    torch.manual_seed(0)
    cnet = CNet([64, 64, "M", 128, "M"], [256], 0.5, patch_size=16, in_channels=15)
    layers = [m for m in cnet.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 5
    for layer in layers:
        fan_in = layer.weight[0].numel()
        assert float(layer.weight.std()) == pytest.approx((2.0 / fan_in) ** 0.5, rel=0.1)


def test_paper_layer_cnet_logits_depend_on_the_input_at_initialisation() -> None:
    # The paper's 17-layer pattern without BatchNorm: with PyTorch's default init the logits of two different
    # inputs differ by < 1e-3 of their size (the C-Net starts at the label prior); with the authors' init they
    # differ in the same order as the logits themselves.
    torch.manual_seed(0)
    layers = [8, 8, "M", 8, 8, "M", 8, 8, 8, "M", 8, 8, 8, "M", 8, 8, 8, "M", 8, 8, 8, 8]
    cnet = CNet(layers, [32, 32], 0.0, patch_size=64).eval()
    x = torch.rand(2, 15, 64, 64)
    with torch.no_grad():
        logits = cnet(x)[LOGITS]
    spread = (logits[0] - logits[1]).abs().mean() / logits.abs().mean()
    assert spread > 0.01


def test_recon_head_starts_at_zero_when_asked_and_as_pytorch_does_by_default() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 15, 16, 16)
    zero = build_model("hcr_net", {"widths": [4, 8], "recon_head_init": "zero"}, patch_size=16)
    assert (zero(x)["recon"] == 0).all()
    default = build_model("hcr_net", {"widths": [4, 8]}, patch_size=16)
    bound = 1 / 4**0.5  # PyTorch's default: U(±1/sqrt(fan_in)) for the bias, fan_in = widths[0]
    assert default.recon_head.bias.abs().max() <= bound and default.recon_head.bias.abs().max() > 0.1 * bound
    with pytest.raises(ConfigError, match="recon_head_init"):
        build_model("hcr_net", {"widths": [4, 8], "recon_head_init": "ones"}, patch_size=16)


def test_cls_init_kaiming_draws_the_branch_from_kaiming_normal_and_default_keeps_pytorchs() -> None:
    torch.manual_seed(0)
    cfg = {"widths": [8, 16], "cls_widths": [256, 256]}
    kaiming = build_model("lc_net", {**cfg, "cls_init": "kaiming"}, 32).classifier.convs[2]
    default = build_model("lc_net", cfg, 32).classifier.convs[2]
    fan_in = 256 * 9
    assert float(kaiming.weight.std()) == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    assert float(default.weight.std()) == pytest.approx((1 / (3 * fan_in)) ** 0.5, rel=0.05)
    with pytest.raises(ConfigError, match="cls_init"):
        build_model("lc_net", {**cfg, "cls_init": "xavier"}, 32)


def test_cls_batchnorm_adds_one_batchnorm_per_classification_conv_and_keeps_the_logits_alive() -> None:
    cfg = {"widths": [8, 16, 32], "cls_widths": [128, 128, 128]}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in build_model("lc_net", cfg, 64).classifier.modules())
    torch.manual_seed(0)
    authors, ours = build_model("lc_net", cfg, 64), build_model("lc_net", {**cfg, "cls_batchnorm": True}, 64)
    kinds = [type(m).__name__ for m in ours.classifier.convs]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"] * 3
    assert count_parameters(ours) - count_parameters(authors) == 2 * 3 * 128  # each BatchNorm's weight and bias
    # the root cause it removes: PyTorch's default init shrinks the signal through each bias-free conv (~1/sqrt 6),
    # so the authors' branch starts with near-constant logits and hands the encoder almost no gradient
    x = torch.randn(16, 15, 64, 64)
    with torch.no_grad():
        spread = {name: float(net(x)["logits"].std(dim=0).mean()) for name, net in (("authors", authors), ("bn", ours))}
    assert spread["bn"] > 10 * spread["authors"], spread


@pytest.mark.parametrize("name", list(TRAINABLE))
def test_each_spec_of_the_model_table_is_what_its_network_and_loss_are(name: str) -> None:
    spec = TRAINABLE[name]
    with torch.device("meta"):
        network = build_network(name, MODEL_DEFAULTS, 256, 4 if spec.target == "direction" else 10)
    assert tuple(network.heads) == spec.heads
    weighting = make_weighting(name) if name in MODELS else None
    assert type(weighting).__name__ == {None: "NoneType", "equal": "EqualWeighting",
                                        "uncertain": "UncertaintyWeighting"}[spec.weighting]
    # two loss terms need a weighting to combine them, one needs none
    assert (len(spec.loss) == 2) == (spec.weighting is not None)
    # the best epoch is chosen on a score of a head the model trains
    assert spec.trains_reconstruction if spec.selection_metric == "val_psnr" else spec.classifies


def test_model_table_lists_the_papers_models_in_table_2_order() -> None:
    assert tuple(MODELS) == tuple(TABLE2)
    assert [s.table1_row for s in MODELS.values() if s.table1_row] == list(TABLE1_PARAMS)
    assert CLASSIFIERS == ("lc_net", "hcr_lc_equal", "hcr_lc_uncertain", "hcr_c_net")
    assert [n for n, s in MODELS.items() if s.frozen_inside] == ["hcr_c_net"]
