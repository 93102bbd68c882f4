"""Importing checkpoints of the authors' training script (hcrlc.authors_checkpoint, `hcrlc import-authors-checkpoint`).

The authors' files are written here from their key names and shapes, as read in Gu-ZQ/HCR-LC-Net
(``models/HCR_LC_Net.py``, ``models/HCR_Net.py``, ``models/LC_Net.py``, ``models/C_Net.py`` and
``main_train_decloud_uncertaintyloss.py``), never from their code. The decisive check: a functional forward pass
written here from the architecture's description (/work/shared/PAPER.md "Authors' code") consumes the authors'
state dict, our network consumes the imported ``best.pt``, and the outputs agree to float precision.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hcrlc.authors_checkpoint import (
    IMPORTED_HOW,
    convert_authors_checkpoint,
    import_authors_checkpoint,
    read_authors_file,
)
from hcrlc.cli import main as cli_main
from hcrlc.demo_scene import write_geotiff
from hcrlc.errors import CheckpointError, ConfigError
from hcrlc.models import count_parameters
from hcrlc.paper import TABLE1_PARAMS
from hcrlc.training import load_checkpoint, load_model

# --- the authors' key names and shapes ---------------------------------------------------------------------------

#: Their U-Net: filters 64..1024 / feature_scale 2 (doubling from level to level, which their unetUp relies on:
#: its first conv takes in_size = the upper level's width = 2 x the concatenated halves), convs 5-7 and inter_class.
PAPER_WIDTHS = [32, 64, 128, 256, 512]
PAPER_CLS = [1024, 2048, 4096]
#: Their C_Net(): VGG config 'F', 15 input channels, classifier 512*8*8 -> 2048 -> 4096 -> 10.
PAPER_CNET = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
              512, 512, 512, 512]
PAPER_HIDDEN = [2048, 4096]
#: Narrow versions with the same depth and naming, for the fast tests.
SMALL_WIDTHS = [2, 4, 8, 16, 32]
SMALL_CLS = [8, 8, 8]
SMALL_CNET = [4, "M", 8, "M", 8, "M", 8, "M", 8, "M"]
SMALL_HIDDEN = [16]

BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def authors_unet_shapes(widths, cls_widths, *, decoder: bool, classifier: bool, in_channels: int = 15,
                        n_classes: int = 10) -> dict[str, tuple[int, ...]]:
    """Key → shape of their LC_Net / HCR_Net / HCR_LC_Net state dict, in their registration order."""
    shapes: dict[str, tuple[int, ...]] = {}
    depth = len(widths) - 1

    def unet_conv2(name, c_in, c_out, batchnorm):  # their unetConv2: conv1, conv2 = Sequential(Conv2d[, BN], ReLU)
        for j in (1, 2):
            shapes[f"{name}.conv{j}.0.weight"] = (c_out, c_in if j == 1 else c_out, 3, 3)
            shapes[f"{name}.conv{j}.0.bias"] = (c_out,)
            if batchnorm:
                for p in ("weight", "bias", "running_mean", "running_var"):
                    shapes[f"{name}.conv{j}.1.{p}"] = (c_out,)
                shapes[f"{name}.conv{j}.1.num_batches_tracked"] = ()

    channels = [in_channels, *widths]
    for i in range(depth + 1):
        unet_conv2(f"conv{i + 1}" if i < depth else "center", channels[i], channels[i + 1], True)
    if decoder:
        for j in range(depth, 0, -1):  # up_concat4 … up_concat1: unetUp(filters[j], filters[j-1]); .conv before .up
            unet_conv2(f"up_concat{j}.conv", widths[j], widths[j - 1], False)
            shapes[f"up_concat{j}.up.weight"] = (widths[j], widths[j - 1], 2, 2)
            shapes[f"up_concat{j}.up.bias"] = (widths[j - 1],)
        shapes["final_decloud.weight"] = (13, widths[0], 1, 1)
        shapes["final_decloud.bias"] = (13,)
    if classifier:
        c_in = widths[-1]
        for k, c_out in enumerate(cls_widths):
            shapes[f"conv{depth + 1 + k}.weight"] = (c_out, c_in, 3, 3)  # bias=False
            c_in = c_out
        shapes["inter_class.weight"] = (n_classes, c_in, 1, 1)
        shapes["inter_class.bias"] = (n_classes,)
    return shapes


def authors_cnet_shapes(layers, hidden, patch_size: int, *, in_channels: int = 15, n_classes: int = 10
                        ) -> dict[str, tuple[int, ...]]:
    """Key → shape of their C_Net (VGG) state dict: features.N (conv, ReLU per width; MaxPool per 'M'),
    classifier.0/3/6 (Linear, ReLU, Dropout, …)."""
    shapes: dict[str, tuple[int, ...]] = {}
    index, c_in = 0, in_channels
    for v in layers:
        if v == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (v, c_in, 3, 3)
        shapes[f"features.{index}.bias"] = (v,)
        index, c_in = index + 2, v
    n_in = c_in * (patch_size // 2 ** layers.count("M")) ** 2
    for k, n_out in enumerate([*hidden, n_classes]):
        shapes[f"classifier.{3 * k}.weight"] = (n_out, n_in)
        shapes[f"classifier.{3 * k}.bias"] = (n_out,)
        n_in = n_out
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Values that keep activations of order 1: He-scaled weights, small biases, BatchNorm statistics that act."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1234)
        elif key.endswith(("running_var", ".1.weight")):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        elif len(shape) == 1:
            state[key] = 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) == 2 or ".up." not in key else shape[0]
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
    return state


def authors_state(network: str, *, widths=SMALL_WIDTHS, cls_widths=SMALL_CLS, seed: int = 0, **kwargs):
    """The authors' state dict of the U-Net network behind our ``network``."""
    decoder = network != "lc_net"
    classifier = network in ("lc_net", "hcr_lc_equal", "hcr_lc_uncertain")
    return random_state(authors_unet_shapes(widths, cls_widths, decoder=decoder, classifier=classifier, **kwargs),
                        seed)


def save_like_their_script(state, path: Path, **extra) -> Path:
    """As main_train_decloud_uncertaintyloss.py saves: epoch (from 0), arch, model/optimizer state, best_prec (a
    NumPy float from scikit-learn's f1_score)."""
    torch.save({"epoch": 6, "arch": "HCR_LC_Net", "model_state_dict": state,
                "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.001, "params": [0, 1]}]},
                "best_prec": np.float64(0.6847), **extra}, path)
    return path


# --- a functional reference of their forward pass (eval mode) -------------------------------------------------------

def reference_unet(sd: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What their LC_Net / HCR_Net / HCR_LC_Net compute in eval mode, from the architecture's description:
    encoder blocks of 2 x (3x3 conv → BatchNorm (running statistics) → ReLU) with 2x2 max-pools, a centre block;
    classification: unpadded bias-free 3x3 convs + ReLU, 1x1 conv, global average pool; decoder: 2x2 transposed
    conv, concatenate [upsampled, skip], 2 x (3x3 conv → ReLU); a 1x1 reconstruction conv."""
    def block(prefix: str, h: torch.Tensor, batchnorm: bool) -> torch.Tensor:
        for j in (1, 2):
            h = F.conv2d(h, sd[f"{prefix}.conv{j}.0.weight"], sd[f"{prefix}.conv{j}.0.bias"], padding=1)
            if batchnorm:
                bn = f"{prefix}.conv{j}.1"
                h = F.batch_norm(h, sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"], sd[f"{bn}.weight"],
                                 sd[f"{bn}.bias"], training=False, eps=1e-5)
            h = F.relu(h)
        return h

    depth = max(int(k.split(".")[0][4:]) for k in sd if k.startswith("conv") and ".conv1.0." in k)
    skips, h = [], x
    for i in range(1, depth + 1):
        h = block(f"conv{i}", h, True)
        skips.append(h)
        h = F.max_pool2d(h, 2)
    centre = block("center", h, True)
    out = {}
    if "final_decloud.weight" in sd:
        h = centre
        for j in range(depth, 0, -1):
            up = F.conv_transpose2d(h, sd[f"up_concat{j}.up.weight"], sd[f"up_concat{j}.up.bias"], stride=2)
            h = block(f"up_concat{j}.conv", torch.cat([up, skips[j - 1]], dim=1), False)
        out["recon"] = F.conv2d(h, sd["final_decloud.weight"], sd["final_decloud.bias"])
    if "inter_class.weight" in sd:
        h, k = centre, depth + 1
        while f"conv{k}.weight" in sd:
            h = F.relu(F.conv2d(h, sd[f"conv{k}.weight"]))
            k += 1
        h = F.conv2d(h, sd["inter_class.weight"], sd["inter_class.bias"])
        out["logits"] = F.adaptive_avg_pool2d(h, 1).flatten(1)
    return out


def reference_cnet(sd: dict[str, torch.Tensor], layers, x: torch.Tensor) -> torch.Tensor:
    """Their C_Net in eval mode: 3x3 convs (padding 1, bias) + ReLU, 2x2 max-pools, flatten, Linear + ReLU
    (dropout off), a last Linear."""
    h, index = x, 0
    for v in layers:
        if v == "M":
            h, index = F.max_pool2d(h, 2), index + 1
        else:
            h = F.relu(F.conv2d(h, sd[f"features.{index}.weight"], sd[f"features.{index}.bias"], padding=1))
            index += 2
    h = h.flatten(1)
    linears = sorted(int(k.split(".")[1]) for k in sd if k.startswith("classifier.") and k.endswith(".weight"))
    for i in linears:
        h = F.linear(h, sd[f"classifier.{i}.weight"], sd[f"classifier.{i}.bias"])
        if i != linears[-1]:
            h = F.relu(h)
    return h


def batch(n: int, size: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 15, size, size, generator=g)  # 13 cloudy S2 bands in [0, 1]
    x[:, 13:] = torch.randn(n, 2, size, size, generator=g)  # standardised S1
    return x


def max_abs_difference(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per output, after checking that ours equals the reference to float precision (and that the reference's
    outputs are finite and not trivially small)."""
    assert set(ours) == set(reference)
    assert all(torch.isfinite(v).all() and v.abs().max() > 0.1 for v in reference.values())
    for key, expected in reference.items():
        torch.testing.assert_close(ours[key], expected, rtol=1e-5, atol=1e-5)
    return {key: float((ours[key] - reference[key]).abs().max()) for key in reference}


# --- Table 1 from their shapes ------------------------------------------------------------------------------------

def _parameters(shapes: dict[str, tuple[int, ...]]) -> int:
    return sum(int(np.prod(s)) for k, s in shapes.items() if not k.endswith(BN_BUFFERS))


def test_the_key_tables_written_from_their_files_count_table1_at_the_papers_widths():
    lc = authors_unet_shapes(PAPER_WIDTHS, PAPER_CLS, decoder=False, classifier=True)
    hcr_lc = authors_unet_shapes(PAPER_WIDTHS, PAPER_CLS, decoder=True, classifier=True)
    hcr = authors_unet_shapes(PAPER_WIDTHS, PAPER_CLS, decoder=True, classifier=False)
    cnet = authors_cnet_shapes(PAPER_CNET, PAPER_HIDDEN, 256)
    assert _parameters(lc) == TABLE1_PARAMS["lc_net"] == 103_851_050
    assert _parameters(hcr_lc) == TABLE1_PARAMS["hcr_lc"] == 106_899_319
    assert _parameters(hcr) + _parameters(cnet) == TABLE1_PARAMS["hcr_c_net"] == 107_473_335


# --- same weights, same outputs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("network", ["lc_net", "hcr_net", "hcr_lc_equal", "hcr_lc_uncertain"])
def test_imported_unet_networks_compute_what_the_authors_networks_compute(network, tmp_path, capsys):
    sd = authors_state(network, seed=3)
    source = save_like_their_script(sd, tmp_path / "theirs.pth")
    import_authors_checkpoint(network, source, tmp_path / "ours")
    model = load_model(tmp_path / "ours" / "best.pt")
    x = batch(2, 128)
    with torch.no_grad():
        ours, reference = model(x), reference_unet(sd, x)
    deltas = max_abs_difference(ours, reference)
    with capsys.disabled():
        print(f"\n{network} (small widths, 128 px): max |ours - reference| {deltas}")


def test_imported_hcr_net_plus_c_net_computes_what_the_authors_pair_computes(tmp_path, capsys):
    hcr_sd = authors_state("hcr_net", seed=4)
    cnet_sd = random_state(authors_cnet_shapes(SMALL_CNET, SMALL_HIDDEN, 128), seed=5)
    hcr_file = save_like_their_script(hcr_sd, tmp_path / "hcr.pth")
    cnet_file = save_like_their_script(cnet_sd, tmp_path / "cnet.pth")
    card = import_authors_checkpoint("hcr_c_net", cnet_file, tmp_path / "ours", hcr_source=hcr_file, patch_size=128)
    assert card["model_config"]["cnet_layers"] == SMALL_CNET  # the trailing pool, which has no weights, found
    model = load_model(tmp_path / "ours" / "best.pt")
    x = batch(2, 128)
    with torch.no_grad():
        ours = model(x)
        recon = reference_unet(hcr_sd, x)["recon"]
        reference = {"recon": recon, "logits": reference_cnet(cnet_sd, SMALL_CNET, torch.cat([recon, x[:, 13:]], 1))}
    deltas = max_abs_difference(ours, reference)
    assert card["imported_from"]["hcr_sha256"] == hashlib.sha256(hcr_file.read_bytes()).hexdigest()
    with capsys.disabled():
        print(f"\nhcr_c_net (small widths, 128 px): max |ours - reference| {deltas}")


@pytest.mark.slow
@pytest.mark.parametrize(("network", "row"), [("lc_net", "lc_net"), ("hcr_lc_uncertain", "hcr_lc")])
def test_at_the_papers_widths_and_256_px_the_outputs_and_table1_agree(network, row, tmp_path, capsys):
    sd = authors_state(network, widths=PAPER_WIDTHS, cls_widths=PAPER_CLS, seed=6)
    source = save_like_their_script(sd, tmp_path / "theirs.pth")
    card = import_authors_checkpoint(network, source, tmp_path / "ours")
    del sd
    sd = read_authors_file(source).state
    model = load_model(tmp_path / "ours" / "best.pt")
    assert count_parameters(model, trainable_only=False) == card["parameters"] == TABLE1_PARAMS[row]
    x = batch(1, 256)
    with torch.no_grad():
        deltas = max_abs_difference(model(x), reference_unet(sd, x))
    with capsys.disabled():
        print(f"\n{network} (paper widths, 256 px): max |ours - reference| {deltas}")


# --- what is read, and what is written ---------------------------------------------------------------------------

def test_the_file_formats_their_code_writes_or_reads_import_to_the_same_weights(tmp_path):
    sd = authors_state("hcr_lc_equal", seed=7)
    files = {
        "model_state_dict": save_like_their_script(sd, tmp_path / "a.pth"),
        "state_dict": tmp_path / "b.pth",  # the key their resume code reads
        "bare": tmp_path / "c.pth",
        "DataParallel": tmp_path / "d.pth",
    }
    torch.save({"epoch": 0, "state_dict": sd}, files["state_dict"])
    torch.save(sd, files["bare"])
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in sd.items()}}, files["DataParallel"])
    states = {name: convert_authors_checkpoint("hcr_lc_equal", path)[0]["state_dict"] for name, path in files.items()}
    for name, state in states.items():
        assert state.keys() == states["bare"].keys(), name
        assert all(torch.equal(state[k], states["bare"][k]) for k in state), name


def test_best_pt_and_model_card_say_where_the_weights_came_from(tmp_path):
    source = save_like_their_script(authors_state("hcr_lc_uncertain", seed=8), tmp_path / "20211105_model_best.pth")
    card = import_authors_checkpoint("hcr_lc_uncertain", source, tmp_path / "ours")
    best = load_checkpoint(tmp_path / "ours" / "best.pt", expected_name="hcr_lc_uncertain")
    assert best["model_cfg"]["widths"] == SMALL_WIDTHS and best["model_cfg"]["cls_widths"] == SMALL_CLS
    assert (best["epoch"], best["metric"], best["value"], best["patch_size"]) == (7, "val_f1", 0.6847, 256)
    # SEN12MS's 10 m pixels, written into the file (not only the loader's fallback for files without the key)
    raw = torch.load(tmp_path / "ours" / "best.pt", weights_only=True)
    assert raw["pixel_size_m"] == 10.0 == card["pixel_size_m"] == card["inputs"]["pixel_size_m"]
    assert best["weighting"] is None  # their script does not save log_var_a / log_var_b
    assert json.loads((tmp_path / "ours" / "model_card.json").read_text()) == card
    imported = card["imported_from"]
    assert imported["how"] == IMPORTED_HOW == "imported from the authors' training script (Gu-ZQ/HCR-LC-Net)"
    assert imported["file"] == str(source.resolve()) and imported["network"] == "hcr_lc_uncertain"
    assert imported["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert imported["saved_beside_the_weights"] == {"epoch": 6, "arch": "HCR_LC_Net", "best_prec": 0.6847}
    assert "not in the file" in imported["log_variances"]
    assert card["data"]["source"] == "unknown" and card["best_epoch"] == 7 and card["model"] == "hcr_lc_uncertain"


@pytest.mark.parametrize("inside", [False, True])
def test_log_variances_go_where_our_uncertainty_weighting_keeps_them(tmp_path, inside):
    sd = authors_state("hcr_lc_uncertain", seed=9)
    log_vars = {"log_var_a": torch.tensor([-0.7]), "log_var_b": torch.tensor([1.3])}
    if inside:
        source = save_like_their_script({**sd, **log_vars}, tmp_path / "theirs.pth")
    else:
        source = save_like_their_script(sd, tmp_path / "theirs.pth", **log_vars)
    best, provenance = convert_authors_checkpoint("hcr_lc_uncertain", source)
    # a (log_var_a) weighs the classification loss, b the CARL loss: our log_var_cls and log_var_carl
    assert {k: v.item() for k, v in best["weighting"].items()} == {"log_var_cls": pytest.approx(-0.7),
                                                                   "log_var_carl": pytest.approx(1.3)}
    assert all(v.shape == () for v in best["weighting"].values()) and provenance["log_variances"] == "from the file"
    with pytest.raises(CheckpointError, match=r"log_var_a.*no\s+place in hcr_lc_equal"):
        convert_authors_checkpoint("hcr_lc_equal", source)


def test_batchnorm_counters_that_old_pytorch_did_not_save_start_at_zero(tmp_path):
    sd = {k: v for k, v in authors_state("lc_net").items() if not k.endswith("num_batches_tracked")}
    state = convert_authors_checkpoint("lc_net", _save(tmp_path, sd))[0]["state_dict"]
    counters = [k for k in state if k.endswith("num_batches_tracked")]
    assert len(counters) == 2 * len(SMALL_WIDTHS) and all(state[k].item() == 0 for k in counters)


def test_a_numpy_1_pickle_of_best_prec_loads(tmp_path):
    # their files were written with NumPy 1.x, which pickles a float64 as numpy.core.multiarray.scalar
    path = save_like_their_script(authors_state("lc_net"), tmp_path / "numpy2.pth")
    old = tmp_path / "numpy1.pth"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray\nscalar" in data
                data = data.replace(b"numpy._core.multiarray\nscalar", b"numpy.core.multiarray\nscalar")
            dst.writestr(info, data)
    assert read_authors_file(old).saved["best_prec"] == 0.6847


# --- errors name the key and the file ------------------------------------------------------------------------------

def _save(tmp_path, state, name="theirs.pth"):
    return save_like_their_script(state, tmp_path / name)


def test_a_key_it_cannot_place_is_an_error_naming_key_and_file(tmp_path):
    sd = authors_state("hcr_lc_equal") | {"conv4.conv3.0.weight": torch.zeros(16, 16, 3, 3)}
    source = _save(tmp_path, sd)
    with pytest.raises(CheckpointError, match=r"theirs\.pth.*'conv4\.conv3\.0\.weight'.*no place in hcr_lc_equal"):
        convert_authors_checkpoint("hcr_lc_equal", source)


def test_a_missing_key_is_an_error_naming_key_and_file(tmp_path):
    sd = authors_state("hcr_net")
    del sd["up_concat2.up.bias"]
    with pytest.raises(CheckpointError, match=r"theirs\.pth: no weight 'up_concat2\.up\.bias'"):
        convert_authors_checkpoint("hcr_net", _save(tmp_path, sd))


def test_a_shape_mismatch_is_an_error_naming_key_and_file(tmp_path):
    sd = authors_state("hcr_net")
    sd["up_concat3.conv.conv2.0.weight"] = torch.zeros(8, 9, 3, 3)
    with pytest.raises(CheckpointError, match=r"theirs\.pth: 'up_concat3\.conv\.conv2\.0\.weight' has shape "
                                              r"\(8, 9, 3, 3\).*needs \(8, 8, 3, 3\)"):
        convert_authors_checkpoint("hcr_net", _save(tmp_path, sd))


@pytest.mark.parametrize(("network", "file_of", "match"), [
    ("hcr_net", "lc_net", "holds the authors' LC-Net"),
    ("lc_net", "hcr_lc_equal", "holds the authors' HCR&LC-Net"),
    ("hcr_lc_uncertain", "hcr_net", "holds the authors' HCR-Net"),
])
def test_a_file_of_another_network_is_refused_naming_what_it_holds(tmp_path, network, file_of, match):
    with pytest.raises(CheckpointError, match=rf"theirs\.pth: {match}.*choose the --network"):
        convert_authors_checkpoint(network, _save(tmp_path, authors_state(file_of)))


def test_inputs_and_classes_this_pipeline_does_not_use_are_refused(tmp_path):
    s2_only = _save(tmp_path, authors_state("lc_net", in_channels=13), "s2_only.pth")
    with pytest.raises(CheckpointError, match=r"s2_only\.pth: 'conv1\.conv1\.0\.weight' has shape \(2, 13, 3, 3\)"):
        convert_authors_checkpoint("lc_net", s2_only)
    igbp17 = _save(tmp_path, authors_state("lc_net", n_classes=17), "igbp17.pth")
    with pytest.raises(CheckpointError, match=r"igbp17\.pth: 'inter_class\.weight'.*17 classes"):
        convert_authors_checkpoint("lc_net", igbp17)


def test_hcr_c_net_needs_both_files_and_no_other_network_takes_two(tmp_path):
    cnet = _save(tmp_path, random_state(authors_cnet_shapes(SMALL_CNET, SMALL_HIDDEN, 128), 0), "cnet.pth")
    hcr = _save(tmp_path, authors_state("hcr_net"), "hcr.pth")
    with pytest.raises(ConfigError, match="HCR-Net file as hcr_source"):
        convert_authors_checkpoint("hcr_c_net", cnet)
    with pytest.raises(ConfigError, match="only to hcr_c_net"):
        convert_authors_checkpoint("hcr_net", hcr, hcr_source=hcr)
    with pytest.raises(CheckpointError, match=r"hcr\.pth: holds the authors' HCR-Net.*as --hcr-checkpoint"):
        convert_authors_checkpoint("hcr_c_net", hcr, hcr_source=cnet)  # the two files swapped
    with pytest.raises(CheckpointError, match=r"cnet\.pth: 'classifier\.0\.weight' takes 128 features.*--patch-size"):
        convert_authors_checkpoint("hcr_c_net", cnet, hcr_source=hcr, patch_size=96)


def test_files_that_are_no_state_dict_are_refused(tmp_path):
    torch.save({"epoch": 3, "arch": "HCR_LC_Net"}, tmp_path / "no_weights.pth")
    with pytest.raises(CheckpointError, match=r"no_weights\.pth: no state dict found"):
        read_authors_file(tmp_path / "no_weights.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"text\.pth: not readable"):
        read_authors_file(tmp_path / "text.pth")
    buffer = io.BytesIO()
    torch.save({"model_state_dict": authors_state("lc_net"), "fn": print}, buffer)  # code in a pickle: not run
    (tmp_path / "code.pth").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match=r"code\.pth: not readable"):
        read_authors_file(tmp_path / "code.pth")


def test_cli_imports_and_reports_errors_with_status_2(tmp_path, capsys):
    source = _save(tmp_path, authors_state("lc_net"))
    assert cli_main(["import-authors-checkpoint", "--network", "lc_net", "--checkpoint", str(source),
                     "--out", str(tmp_path / "ours")]) == 0
    assert (tmp_path / "ours" / "best.pt").is_file() and (tmp_path / "ours" / "model_card.json").is_file()
    assert cli_main(["import-authors-checkpoint", "--network", "hcr_net", "--checkpoint", str(source),
                     "--out", str(tmp_path / "wrong")]) == 2
    assert "theirs.pth: holds the authors' LC-Net" in capsys.readouterr().err
    assert not (tmp_path / "wrong").exists()


def test_cli_evaluate_without_the_data_stage_names_the_folder_and_the_fix(tmp_path, capsys):
    source = _save(tmp_path, authors_state("lc_net"))
    assert cli_main(["import-authors-checkpoint", "--network", "lc_net", "--checkpoint", str(source),
                     "--out", str(tmp_path / "ours")]) == 0
    assert cli_main(["evaluate", "--checkpoint", str(tmp_path / "ours" / "best.pt"), "--results",
                     str(tmp_path / "results"), "--out", str(tmp_path / "eval")]) == 2
    assert "results/shards: missing. Fix: prepare the test data first: snakemake data masks" in capsys.readouterr().err


# --- import → evaluate → predict, on the smoke preset's data ---------------------------------------------------------

def write_scene(folder: Path, size: int) -> tuple[Path, Path]:
    """A one-window scene: 13-band L1C-like DN on a UTM 10 m grid, S1 VV/VH in dB on the same grid."""
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    dn = rng.integers(200, 3000, size=(13, size, size)).astype("uint16")
    dn[:, : size // 2, : size // 2] = 7000  # a bright cloud
    s1 = rng.normal(-12.0, 3.0, size=(2, size, size)).astype("float32")
    transform, crs = from_origin(500_000.0, 5_200_000.0, 10.0, 10.0), CRS.from_epsg(32633)
    write_geotiff(folder / "s2.tif", dn, crs, transform)
    write_geotiff(folder / "s1.tif", s1, crs, transform)
    return folder / "s2.tif", folder / "s1.tif"


@pytest.mark.slow
def test_imported_checkpoints_evaluate_and_predict_end_to_end(paper_geometry_run, tmp_path):
    # the authors' networks are 256 px, depth 4: the paper-geometry run's test shards, masks and index (read only)
    results = paper_geometry_run / "results"
    s2, s1 = write_scene(tmp_path, 256)
    hcr_file = _save(tmp_path, authors_state("hcr_net", seed=11), "hcr_net.pth")
    files = {name: _save(tmp_path, authors_state(name, seed=12), f"{name}.pth")
             for name in ("lc_net", "hcr_lc_equal", "hcr_lc_uncertain")} | {"hcr_net": hcr_file}
    files["hcr_c_net"] = _save(tmp_path, random_state(authors_cnet_shapes(SMALL_CNET, SMALL_HIDDEN, 256), 13),
                               "cnet.pth")
    for network, source in files.items():
        models = tmp_path / "models" / network
        extra = ["--hcr-checkpoint", str(hcr_file)] if network == "hcr_c_net" else []
        assert cli_main(["import-authors-checkpoint", "--network", network, "--checkpoint", str(source),
                         "--out", str(models), *extra]) == 0, network
        out = tmp_path / "eval" / network
        assert cli_main(["evaluate", "--checkpoint", str(models / "best.pt"), "--results", str(results),
                         "--out", str(out), "--device", "cpu", "--batch-size", "4"]) == 0, network
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["n_test"] > 0
        assert (metrics["f1"] is None) == (network == "hcr_net") and (metrics["psnr"] is None) == (network == "lc_net")
        card = json.loads((out / "model_card.json").read_text())
        assert card["test_metrics"] == metrics and card["imported_from"]["network"] == network
        assert {"predictions.npz", "examples.npz"} <= {p.name for p in out.iterdir()}
        scene = tmp_path / "predict" / network
        assert cli_main(["predict", "--checkpoint", str(models / "best.pt"), "--s2", str(s2), "--s1", str(s1),
                         "--out", str(scene), "--device", "cpu", "--quiet"]) == 0, network
        summary = json.loads((scene / "summary.json").read_text())
        assert summary["model"] == network and summary["trained_on"] == "unknown"
        assert summary["model_card"]["imported_from"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert ("cloud_free.tif" in summary["outputs"]) == (network != "lc_net")
        assert ("landcover.tif" in summary["outputs"]) == (network != "hcr_net")
