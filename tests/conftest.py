"""Shared fixtures: small generated trees in the exact real layout, made by the same module the demo uses, and
the whole smoke workflow run once per test module (``smoke_run``) through the ``snakemake()`` helper."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hcrlc.data.synthetic import generate_trees

REPO = Path(__file__).resolve().parents[1]
#: one hold-out scene per season we use (-> test) and two ordinary scenes (-> train/val)
TINY_SCENES = [("spring", 15), ("spring", 1), ("fall", 3)]
TINY_GRID = 2
SMOKE = REPO / "configs" / "smoke.yaml"
#: the demo's scale model (config.yaml): its networks (``model``) and its patch size in px
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())
DEMO_MODEL, DEMO_PATCH = DEMO["model"], DEMO["synthetic"]["patch_size"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test runs torch on one thread: results do not depend on the core count, and shared CI cores stay fair."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_tree_master(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("tree")
    patches = generate_trees(root / "SEN12MS", root / "SEN12MS-CR", scenes=TINY_SCENES, grid=TINY_GRID, seed=3,
                             only_in_one_tree=1)
    return root / "SEN12MS", root / "SEN12MS-CR", patches


@pytest.fixture
def tiny_tree(tiny_tree_master, tmp_path) -> tuple[Path, Path, pd.DataFrame]:
    """A private copy of the tiny tree that a test may corrupt."""
    ms, cr, patches = tiny_tree_master
    shutil.copytree(ms, tmp_path / "SEN12MS")
    shutil.copytree(cr, tmp_path / "SEN12MS-CR")
    return tmp_path / "SEN12MS", tmp_path / "SEN12MS-CR", patches


def snakemake(workdir: Path, *args: str, check: bool = True, snakefile: Path = REPO / "Snakefile"
              ) -> subprocess.CompletedProcess:
    """Run the repository's workflow (or that of ``snakefile``) in ``workdir``; smoke config unless ``--configfile``
    is among ``args``."""
    # targets and flags first: --configfile takes every word after it
    configs = [] if "--configfile" in args else ["--configfile", str(SMOKE)]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), "--cores", "2",
           *args, *configs]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """The workflow and library copied with their modification times, to edit without touching the repository."""
    copy = tmp_path / "repo"
    copy.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ["Snakefile", "config.yaml"]:
        shutil.copy2(REPO / name, copy / name)
    for name in ["workflow", "src", "configs", "envs", "profiles"]:
        shutil.copytree(REPO / name, copy / name, ignore=ignore)
    return copy


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """A workdir holding the whole default workflow run on the smoke config (once per test module)."""
    work = tmp_path_factory.mktemp("smoke")
    snakemake(work)  # the default target: the whole workflow
    return work


#: Overlay of the smoke config with the paper's geometry at the smallest cost: 256 px patches, a U-Net of depth 4
#: (16 px centre) with three classification convs (16 -> 14 -> 12 -> 10 px) and a five-pool C-Net (256 -> 8 px),
#: two to four channels a layer.
PAPER_GEOMETRY = {"synthetic": {"patch_size": 256},
                  "model": {"widths": [2, 2, 2, 2, 4], "cls_widths": [4, 4, 4],
                            "cnet_layers": [2, "M", 2, "M", 2, "M", 2, "M", 2, "M"], "cnet_hidden": [8]}}
#: what the paper-geometry run builds: every network of Table 2 and the pretext trained, Fig. 3 (two evaluations)
#: and the model card of the sequential ensemble, whose C-Net is sized by the patch
PAPER_GEOMETRY_TARGETS = ("train", "results/models/pretext/best.pt", "results/figures/fig3.png",
                          "results/models/hcr_c_net/model_card.json")


@pytest.fixture(scope="session")
def paper_geometry_run(tmp_path_factory) -> Path:
    """A workdir in which the smoke config with :data:`PAPER_GEOMETRY` ran :data:`PAPER_GEOMETRY_TARGETS`."""
    work = tmp_path_factory.mktemp("paper_geometry")
    overlay = work / "paper_geometry.yaml"
    overlay.write_text(yaml.safe_dump(PAPER_GEOMETRY))
    snakemake(work, *PAPER_GEOMETRY_TARGETS, "--configfile", str(SMOKE), str(overlay))
    return work
