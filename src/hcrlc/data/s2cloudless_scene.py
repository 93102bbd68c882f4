"""Real Sentinel-2 pixels for tests, benchmarks and the demo scene: s2cloudless's own test scene.

s2cloudless 1.0.0-1.2.0 shipped a real L1C scene (``input_arrays.npz``, 856 × 512 px, 13 bands) in their sdist;
:func:`fetch_s2cloudless_scene` downloads the pinned sdist once with pip into the cache of
:func:`hcrlc.data.fast_cloud.cache_dir` and extracts that file. ``python benchmarks/cloud_masks.py --fetch`` does
it by hand; ``snakemake predict_demo_scene`` on first use.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from hcrlc.data.fast_cloud import DN_MAX, cache_dir
from hcrlc.errors import DataError

#: s2cloudless 1.0.0-1.2.0 shipped their test scene in the sdist (later releases dropped it). Pinned by hash.
S2CLOUDLESS_SCENE_SDIST = "s2cloudless==1.2.0"
S2CLOUDLESS_SCENE_SDIST_SHA256 = "16beed6b57301009f24c2ad070d653e6db554ec27e91bce42213182006b4f706"
S2CLOUDLESS_SCENE_MEMBER = "s2cloudless-1.2.0/s2cloudless/TestInputs/input_arrays.npz"


def s2cloudless_scene_path() -> Path:
    """Where :func:`fetch_s2cloudless_scene` keeps s2cloudless's test scene (``input_arrays.npz``)."""
    return cache_dir() / "s2cloudless-1.2.0-input_arrays.npz"


def fetch_s2cloudless_scene() -> Path:
    """Download s2cloudless's real Sentinel-2 test scene with pip (the 1.2.0 sdist, ~4.7 MB) into the cache."""
    target = s2cloudless_scene_path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--no-build-isolation", "--disable-pip-version-check", "-d", tmp, S2CLOUDLESS_SCENE_SDIST]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("s2cloudless-1.2.0.tar.gz"))
        if done.returncode != 0 or not sdists:
            raise DataError(target, f"`{' '.join(cmd)}` failed: {done.stderr[-500:]}",
                            "check the network / pip index, or copy input_arrays.npz there by hand")
        digest = hashlib.sha256(sdists[0].read_bytes()).hexdigest()
        if digest != S2CLOUDLESS_SCENE_SDIST_SHA256:
            raise DataError(sdists[0], f"sha256 {digest} is not the pinned {S2CLOUDLESS_SCENE_SDIST_SHA256}",
                            "check which index pip used")
        with tarfile.open(sdists[0]) as tar:
            member = tar.extractfile(S2CLOUDLESS_SCENE_MEMBER)
            if member is None:
                raise DataError(sdists[0], f"{S2CLOUDLESS_SCENE_MEMBER} missing", "check the pinned sdist")
            partial = Path(tmp) / target.name
            partial.write_bytes(member.read())
        os.replace(partial, target)
    return target


def load_s2cloudless_scene(path: str | Path | None = None) -> np.ndarray:
    """s2cloudless's test scene as (1, 13, 856, 512) uint16 DN (its float32 reflectance ×10,000, rounded)."""
    path = Path(path) if path is not None else s2cloudless_scene_path()
    if not path.is_file():
        raise DataError(path, "s2cloudless's test scene is not fetched",
                        "run `python benchmarks/cloud_masks.py --fetch` (pip downloads it into the cache)")
    with np.load(path) as data:
        reflectance = data["s2_im"]  # (1, H, W, 13) float32
    return np.moveaxis(np.rint(reflectance.astype(np.float64) * DN_MAX), -1, 1).astype(np.uint16)
