"""Paper-scale throughput: what a GPU can eat, what it takes to feed it, and which of the three binds.

One run, on any machine (no GPU needed), prints a table and writes ``--json FILE``:

* per paper model (LC-Net, HCR-Net, HCR&LC-Net, HCR-Net + C-Net at the widths of ``configs/paper.yaml``):
  ``fwd_gflop_per_sample`` (forward only) and ``train_gflop_per_sample`` (forward + backward of the real training
  objective, :func:`train_throughput.flops_per_sample`), both counted by ``torch.utils.flop_counter`` on the meta
  device at 256 × 256 px (convolutions and matrix products; element-wise work is left out, as usual for MFU), and
  ``bytes_per_sample``: the bytes :meth:`TripletDataset.raw_item` returns, i.e. what a loader worker reads from the
  shards per training sample (13-band uint16 cloudy and clear S2, 2-band float32 S1, the bit-packed mask);
* the loader measured here, per core (one process, one thread): ``TripletDataset.raw_item`` over a generated
  scene shard (``--patches`` patches, real S2 pixels of s2cloudless's test scene when it is fetched), from the page
  cache ("warm") and from the disk ("cold": the shard's pages are dropped with ``posix_fadvise(DONTNEED)`` before
  every pass, which evicts only this benchmark's own files, not the other users' page cache);
* lossless compression of the S2 arrays (blosc2 zstd+shuffle and lz4+bitshuffle, one 1.7 MB chunk per patch, one
  thread): ratio and decode GB/s per core on real pixels, and what they change;
* per card preset (A100, H100, H200 SXM; dense peak FLOP/s per precision from NVIDIA's data sheets, table
  :data:`train_throughput.PEAK_FLOPS` names the sheets) × precision (fp32, tf32, bf16) at ``--mfu``: the samples/s
  the GPU takes, the GB/s the loader must read, the loader cores it needs, what binds a node with
  ``--cores-per-gpu`` loader cores and ``--disk-gbps`` of read bandwidth per GPU (GPU, CPU or disk), and the
  GPU-hours of the whole paper, for the HCR&LC-Net (the model most runs train).

The paper's work (``workload``), from ``configs/paper.yaml`` and the paper's 109,549 train+val patches:
training split n_train = 109,549 × (1 − val_fraction 0.1) ≈ 98,594 (validation ≈ 10,955);
5 models × 10 epochs × n_train = 4.93 M; pretext 20 epochs × n_train = 1.97 M (an upper bound: patches without a
neighbour are left out); ``ssl_on_{25,50,75,100}`` (5 frozen + 10 fine-tuning epochs) on 2.5 × n_train = 3.70 M;
``ssl_off_*`` (10 epochs) 2.46 M; in all 13.06 M training sample-passes (14.52 M if the validation tenth were
trained on too: 109,549 × 132.5 epochs, the issue's "14.3 M" is this count rounded differently), plus one
validation forward pass per epoch (1.45 M). Each run is weighted by its own model's FLOPs (HCR-Net + C-Net's
training steps run the frozen HCR-Net forward only; the SSL frozen stage back-propagates into the new layers only),
so the GPU-hours are Σ passes × FLOPs / (MFU × peak).

    python benchmarks/paper_scale.py --json /tmp/paper_scale.json      # ≈ 1-3 min on 2 cores
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from torch.utils.data import default_collate
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import PRECISIONS, flops_per_sample, peaks_of

from hcrlc.data.dataset import TripletDataset
from hcrlc.data.layout import scene_key
from hcrlc.losses import make_weighting
from hcrlc.models import build_model, resolve_model_config
from hcrlc.paper import PAPER_N_TRAINVAL, PATCH_SIZE, S1_BANDS, S2_BANDS, TARGET_COLUMNS
from hcrlc.selfsup import NEW_LAYERS, SSL_MODEL
from hcrlc.training import PRETEXT, TrainingObjective

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "configs" / "paper.yaml"
#: The four networks of Table 2 (hcr_lc_uncertain is hcr_lc_equal's network with another loss weighting).
PAPER_MODELS = {"lc_net": "LC-Net", "hcr_net": "HCR-Net", "hcr_lc_equal": "HCR&LC-Net", "hcr_c_net": "HCR-Net + C-Net"}
#: Card presets: SXM parts, named as ``peaks_of`` finds them.
CARDS = ("A100", "H100", "H200")
#: Read bandwidth a GPU's loader gets by default, GB/s: one GPU's share of a node with one datacenter NVMe SSD
#: (3-7 GB/s sequential) or of a parallel file system's client (typically 1-5 GB/s per node), shared by 4-8 GPUs.
DEFAULT_DISK_GBPS = 2.0
#: Loader cores per GPU by default: 16 is what a typical 8-GPU node (128 cores) leaves each GPU.
DEFAULT_CORES_PER_GPU = 16


# ---------------------------------------------------------------------------------------------------------- FLOPs
def forward_flops_per_sample(name: str, model_cfg: Mapping[str, Any], size: int = PATCH_SIZE) -> int:
    """FLOPs of one forward pass of network ``name`` on a (1, 15, size, size) input, counted on the meta device."""
    with torch.device("meta"):
        model = build_model(name, model_cfg, patch_size=size)
        x = torch.empty(1, S2_BANDS + S1_BANDS, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def _count_training(objective: TrainingObjective, size: int, pretext: bool = False) -> int:
    meta = torch.device("meta")
    x = torch.empty(1, S2_BANDS + S1_BANDS, size, size, device=meta)
    if pretext:
        args = (x, None, None, torch.zeros(1, dtype=torch.int64, device=meta))
    else:
        args = (x, torch.empty(1, S2_BANDS, size, size, device=meta), torch.zeros(1, 1, size, size, device=meta),
                torch.zeros(1, 10, device=meta))
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = objective(*args)
        loss.backward()
    return counter.get_total_flops()


def pretext_train_flops(model_cfg: Mapping[str, Any], size: int = PATCH_SIZE) -> int:
    """Forward + backward FLOPs of one pretext sample (LC-Net with a 4-way head, cross-entropy)."""
    with torch.device("meta"):
        objective = TrainingObjective(PRETEXT, build_model("lc_net", model_cfg, size, n_classes=4), None)
    return _count_training(objective, size, pretext=True)


def ssl_frozen_train_flops(model_cfg: Mapping[str, Any], size: int = PATCH_SIZE) -> int:
    """Forward + backward FLOPs of one sample of the SSL frozen stage: only :data:`NEW_LAYERS` get gradients."""
    with torch.device("meta"):
        objective = TrainingObjective(SSL_MODEL, build_model(SSL_MODEL, model_cfg, size), make_weighting(SSL_MODEL))
    for pname, p in objective.model.named_parameters():
        p.requires_grad_(any(pname == k or pname.startswith(k + ".") for k in NEW_LAYERS))
    return _count_training(objective, size)


# ------------------------------------------------------------------------------------------------------- workload
def workload(cfg: Mapping[str, Any], n_trainval: int = PAPER_N_TRAINVAL) -> list[dict[str, Any]]:
    """The paper's runs as (run, flop key, training sample-passes, validation forward passes), from the config.

    flop key: a model name, ``pretext`` or ``ssl_frozen``; see the module doc for the derivation.
    """
    n_val = round(n_trainval * cfg["split"]["val_fraction"])
    n_train = n_trainval - n_val
    epochs = cfg["training"]["epochs"]
    ssl = cfg["ssl"]
    runs = [{"run": m, "flops": m, "train": cfg["models"][m]["epochs"] * n_train,
             "val": cfg["models"][m]["epochs"] * n_val}
            for m in ("lc_net", "hcr_net", "hcr_lc_equal", "hcr_lc_uncertain", "hcr_c_net")]
    runs.append({"run": "pretext", "flops": "pretext", "train": ssl["pretext_epochs"] * n_train,
                 "val": ssl["pretext_epochs"] * n_val})
    scratch = ssl["scratch_epochs"] or epochs
    for f in ssl["label_fractions"]:
        n = round(n_train * f / 100)
        runs.append({"run": f"ssl_on_{f} frozen", "flops": "ssl_frozen", "train": ssl["frozen_epochs"] * n,
                     "val": ssl["frozen_epochs"] * n_val})
        runs.append({"run": f"ssl_on_{f} finetune", "flops": SSL_MODEL, "train": ssl["finetune_epochs"] * n,
                     "val": ssl["finetune_epochs"] * n_val})
        runs.append({"run": f"ssl_off_{f}", "flops": SSL_MODEL, "train": scratch * n, "val": scratch * n_val})
    return runs


# --------------------------------------------------------------------------------------------------------- loader
def real_s2_patches(n: int, seed: int = 0) -> np.ndarray | None:
    """(n, 13, 256, 256) uint16 crops of s2cloudless's real test scene (None when it is not fetched)."""
    from hcrlc.data import fast_cloud as fc  # only here: the FLOP part needs none of it
    try:
        scene = fc.load_s2cloudless_scene()[0]
    except Exception:  # noqa: BLE001 - not fetched: the loader runs on synthetic pixels, compression is skipped
        return None
    _, h, w = scene.shape
    rng = np.random.default_rng(seed)
    out = np.empty((n, S2_BANDS, PATCH_SIZE, PATCH_SIZE), dtype=np.uint16)
    for i in range(n):
        y, x = rng.integers(0, h - PATCH_SIZE + 1), rng.integers(0, w - PATCH_SIZE + 1)
        out[i] = np.rot90(scene[:, y:y + PATCH_SIZE, x:x + PATCH_SIZE], k=int(rng.integers(4)), axes=(1, 2))
    return out


def write_shard(root: Path, n: int, s2: np.ndarray | None, seed: int = 0) -> pd.DataFrame:
    """A one-scene shard store under ``root`` (shards/, masks/) of ``n`` patches in the workflow's format; returns
    the index frame addressing it. S2 from ``s2`` (cycled) when given, else random DN; S1 speckle-like dB."""
    rng = np.random.default_rng(seed)
    season, scene = "spring", 1
    shard, masks = root / "shards" / scene_key(season, scene), root / "masks" / scene_key(season, scene)
    shard.mkdir(parents=True)
    masks.mkdir(parents=True)
    px = (PATCH_SIZE, PATCH_SIZE)
    for name in ("s2_cloudy", "s2"):
        arr = np.lib.format.open_memmap(shard / f"{name}.npy", "w+", np.uint16, (n, S2_BANDS, *px))
        for i in range(n):
            arr[i] = s2[(i + (name == "s2") * 7) % len(s2)] if s2 is not None else rng.integers(0, 10_000, arr[i].shape)
        arr.flush()
    s1 = np.lib.format.open_memmap(shard / "s1.npy", "w+", np.float32, (n, S1_BANDS, *px))
    for i in range(n):
        s1[i] = 10 * np.log10(rng.gamma(4.0, 0.25 * 10 ** (-1.2), (S1_BANDS, *px)))  # 4-look speckle around -12 dB
    s1.flush()
    np.save(masks / "mask.npy", rng.integers(0, 256, (n, PATCH_SIZE * PATCH_SIZE // 8), dtype=np.uint8))
    frame = pd.DataFrame({"season": season, "scene": scene, "patch": np.arange(n), "row": np.arange(n),
                          "split": "train", "cloud_fraction": 0.5, **dict.fromkeys(TARGET_COLUMNS, False)})
    frame[["season", "scene", "patch", "row"]].to_parquet(shard / "table.parquet")
    return frame


def drop_from_page_cache(folder: Path) -> None:
    """Evict the pages of every file under ``folder`` (this benchmark's files only; no root needed)."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def time_passes(fetch: Callable[[list[int]], Any], n: int, batch: int, passes: int,
                before: Callable[[], None] | None = None, seed: int = 0) -> dict[str, float]:
    """Samples per CPU second and per wall second (median and best of ``passes``) of ``fetch`` over shuffled
    batches of ``batch`` indices covering ``n`` items, as a DataLoader worker fetches them."""
    rates, walls = [], []
    for p in range(passes):
        if before is not None:
            before()
        order = np.random.default_rng([seed, p]).permutation(n)
        wall, cpu = time.perf_counter(), time.process_time()
        for a in range(0, n - batch + 1, batch):
            fetch([int(i) for i in order[a:a + batch]])
        done = (n // batch) * batch
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rates.append(done / max(cpu, 1e-9))
        walls.append(done / wall)
    return {"per_cpu_s_median": float(np.median(rates)), "per_cpu_s_best": max(rates),
            "per_wall_s_median": float(np.median(walls)), "per_wall_s_best": max(walls)}


def measure_loader(root: Path, frame: pd.DataFrame, batch: int, passes: int) -> dict[str, Any]:
    """What a loader worker does per batch, over the shard under ``root``, warm and cold, one thread:
    ``items+collate`` (``raw_item`` per sample, then ``default_collate``: the loader before ``__getitems__``) and
    ``getitems`` (``TripletDataset.__getitems__``: what the DataLoader calls now). Also the bytes per sample."""
    ds = TripletDataset(frame, root / "shards", root / "masks", raw=True)
    item = ds.raw_item(0)
    nbytes = sum(int(item[k].numel() * item[k].element_size()) for k in ("s2_cloudy", "s2", "s1", "mask"))
    torch.set_num_threads(1)

    def evict() -> None:
        ds._open.clear()  # unmap first: the kernel keeps the pages of a file that is still mapped
        drop_from_page_cache(root / "shards")

    fetchers = {"items+collate": lambda idx: default_collate([ds.raw_item(i) for i in idx]),
                "getitems": ds.__getitems__}
    out: dict[str, Any] = {"bytes_per_sample": nbytes, "batch": batch}
    for label, fetch in fetchers.items():
        fetch(list(range(batch)))  # warm the page cache
        out[label] = {"warm": time_passes(fetch, len(ds), batch, passes),
                      "cold": time_passes(fetch, len(ds), batch, passes, before=evict)}
    out["cold_read_gbps"] = out["getitems"]["cold"]["per_wall_s_median"] * nbytes / 1e9
    return out


def measure_compression(s2: np.ndarray, repeats: int = 3) -> dict[str, dict[str, float]]:
    """Ratio and one-thread decode/encode GB/s (of decoded bytes) of blosc2 codecs on (n, 13, H, W) uint16 S2."""
    try:
        import blosc2
    except ImportError:
        return {}
    blosc2.set_nthreads(1)
    codecs = {"zstd1+shuffle": (blosc2.Codec.ZSTD, 1, blosc2.Filter.SHUFFLE),
              "zstd3+shuffle": (blosc2.Codec.ZSTD, 3, blosc2.Filter.SHUFFLE),
              "lz4+bitshuffle": (blosc2.Codec.LZ4, 5, blosc2.Filter.BITSHUFFLE)}
    out = {}
    for label, (codec, level, filt) in codecs.items():
        cparams = {"codec": codec, "clevel": level, "filters": [filt], "typesize": 2, "nthreads": 1}
        t = time.process_time()
        chunks = [blosc2.compress2(np.ascontiguousarray(p), **cparams) for p in s2]
        enc = time.process_time() - t
        best = math.inf
        for _ in range(repeats):
            t = time.process_time()
            for c in chunks:
                blosc2.decompress2(c)
            best = min(best, time.process_time() - t)
        ok = all(np.array_equal(np.frombuffer(blosc2.decompress2(c), np.uint16).reshape(p.shape), p)
                 for c, p in zip(chunks, s2))
        out[label] = {"ratio": s2.nbytes / sum(len(c) for c in chunks), "decode_gbps_per_core": s2.nbytes / best / 1e9,
                      "encode_gbps_per_core": s2.nbytes / enc / 1e9, "bit_exact": ok}
    return out


# --------------------------------------------------------------------------------------------------------- sizing
def sizing(flops: dict[str, dict[str, int]], runs: list[dict[str, Any]], loader: dict[str, Any], mfu: float,
           cores_per_gpu: int, disk_gbps: float, compression: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per card × precision × model: GPU rate, loader needs, what binds, GPU-hours of the paper.

    ``compression`` (ratio, decode GB/s per core), when given, shrinks the S2 bytes read and adds decode time.
    """
    nbytes = loader["bytes_per_sample"]
    s2_bytes = 2 * S2_BANDS * PATCH_SIZE * PATCH_SIZE * 2
    per_core = loader["getitems"]["warm"]["per_cpu_s_median"]  # CPU cost of a sample once its bytes are in memory
    if compression:
        disk_bytes = nbytes - s2_bytes + s2_bytes / compression["ratio"]
        per_core = 1 / (1 / per_core + s2_bytes / (compression["decode_gbps_per_core"] * 1e9))
    else:
        disk_bytes = nbytes
    rows = []
    for card in CARDS:
        peaks = peaks_of(card)
        for prec in PRECISIONS:
            rate_of = {k: mfu * peaks[prec] / v["train"] for k, v in flops.items()}
            gpu_s = sum(r["train"] * flops[r["flops"]]["train"] + r["val"] * flops[r["flops"]]["fwd"]
                        for r in runs) / (mfu * peaks[prec])
            for model in PAPER_MODELS:
                gpu = rate_of[model]
                cpu_cap, disk_cap = cores_per_gpu * per_core, disk_gbps * 1e9 / disk_bytes
                bound = min((gpu, "GPU"), (cpu_cap, "CPU"), (disk_cap, "disk"))
                rows.append({"card": card, "precision": prec, "model": model, "peak_tflops": peaks[prec] / 1e12,
                             "gpu_samples_per_s": gpu, "read_gbps": gpu * disk_bytes / 1e9,
                             "loader_cores": gpu / per_core, "bound_by": bound[1], "samples_per_s": bound[0],
                             "paper_gpu_hours": gpu_s / 3600,
                             # the paper as bound: every run slowed by the same factor as this model's
                             "paper_hours_as_bound": gpu_s / 3600 * gpu / bound[0]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--mfu", type=float, default=0.4, help="model FLOP utilisation assumed for the cards")
    ap.add_argument("--cores-per-gpu", type=int, default=DEFAULT_CORES_PER_GPU, help="loader cores per GPU")
    ap.add_argument("--disk-gbps", type=float, default=DEFAULT_DISK_GBPS, help="read GB/s per GPU (see code)")
    ap.add_argument("--patches", type=int, default=192, help="patches in the generated shard (4 MB each)")
    ap.add_argument("--passes", type=int, default=3, help="timed passes, warm and cold each")
    ap.add_argument("--batch", type=int, default=64, help="loader batch (the paper's)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the shard is written (default: a temp dir)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = yaml.safe_load(PAPER.read_text())
    model_cfg = resolve_model_config(cfg["model"])

    flops: dict[str, dict[str, int]] = {}
    for name in [*PAPER_MODELS, "hcr_lc_uncertain"]:
        flops[name] = {"fwd": forward_flops_per_sample(name, model_cfg),
                       "train": flops_per_sample(name, PATCH_SIZE, model_cfg)}
    flops["pretext"] = {"fwd": forward_flops_per_sample("lc_net", model_cfg), "train": pretext_train_flops(model_cfg)}
    flops["ssl_frozen"] = {"fwd": flops[SSL_MODEL]["fwd"], "train": ssl_frozen_train_flops(model_cfg)}
    runs = workload(cfg)
    t_flops = time.perf_counter() - t0

    s2 = real_s2_patches(args.patches)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        frame = write_shard(Path(tmp), args.patches, s2)
        loader = measure_loader(Path(tmp), frame, args.batch, args.passes)
    loader["pixels"] = "real S2 (s2cloudless test scene crops)" if s2 is not None else "synthetic S2"
    compression = measure_compression(s2) if s2 is not None else {}
    rows = sizing(flops, runs, loader, args.mfu, args.cores_per_gpu, args.disk_gbps, None)
    by_codec = {k: sizing(flops, runs, loader, args.mfu, args.cores_per_gpu, args.disk_gbps, v)
                for k, v in compression.items()}

    def h100_bf16(table: list[dict[str, Any]]) -> float:  # the codec that feeds the fastest card best wins
        return next(r["samples_per_s"] for r in table
                    if (r["card"], r["precision"], r["model"]) == ("H100", "bf16", "hcr_lc_equal"))

    best_codec = max(by_codec, key=lambda k: h100_bf16(by_codec[k])) if by_codec else None
    rows_c = by_codec[best_codec] if best_codec else []

    models = {m: {"label": PAPER_MODELS[m], "fwd_gflop_per_sample": flops[m]["fwd"] / 1e9,
                  "train_gflop_per_sample": flops[m]["train"] / 1e9, "bytes_per_sample": loader["bytes_per_sample"],
                  "samples_per_s_per_core": loader["getitems"]["warm"]["per_cpu_s_median"],
                  "samples_per_s_per_core_cold": loader["getitems"]["cold"]["per_cpu_s_median"]} for m in PAPER_MODELS}
    total_train = sum(r["train"] for r in runs)
    total_val = sum(r["val"] for r in runs)

    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"FLOPs counted in {t_flops:.1f} s")
    print(f"\n{'model':<17}{'fwd GFLOP':>10}{'train GFLOP':>12}{'bytes/sample':>14}{'loader/s/core warm':>20}"
          f"{'cold':>8}")
    for v in models.values():
        print(f"{v['label']:<17}{v['fwd_gflop_per_sample']:>10.2f}{v['train_gflop_per_sample']:>12.2f}"
              f"{v['bytes_per_sample']:>14,}{v['samples_per_s_per_core']:>20.0f}{v['samples_per_s_per_core_cold']:>8.0f}")
    print(f"(also: pretext {flops['pretext']['train'] / 1e9:.2f}, SSL frozen stage {flops['ssl_frozen']['train'] / 1e9:.2f}"
          f", HCR&LC uncertain {flops['hcr_lc_uncertain']['train'] / 1e9:.2f} train GFLOP/sample)")
    print(f"\nloader worker ({loader['pixels']}, {args.patches} patches, shuffled batches of {args.batch}, 1 thread); "
          "samples per CPU-s (per wall-s), median of passes:")
    for label in ("items+collate", "getitems"):
        w, c = loader[label]["warm"], loader[label]["cold"]
        print(f"  {label:<14} warm {w['per_cpu_s_median']:6.0f} ({w['per_wall_s_median']:6.0f})   cold "
              f"{c['per_cpu_s_median']:6.0f} ({c['per_wall_s_median']:6.0f})")
    base, ours = loader["items+collate"], loader["getitems"]
    print(f"  ratio getitems / items+collate per CPU-s: warm "
          f"{ours['warm']['per_cpu_s_median'] / base['warm']['per_cpu_s_median']:.2f}x, cold "
          f"{ours['cold']['per_cpu_s_median'] / base['cold']['per_cpu_s_median']:.2f}x; cold reads "
          f"{loader['cold_read_gbps']:.2f} GB/s from this machine's disk")
    for label, v in compression.items():
        print(f"S2 compression {label:<15}: ratio {v['ratio']:.2f}, decode {v['decode_gbps_per_core']:.2f} GB/s per core,"
              f" encode {v['encode_gbps_per_core']:.2f}, bit-exact {v['bit_exact']}")
    print(f"\npaper workload: {total_train / 1e6:.2f} M training sample-passes + {total_val / 1e6:.2f} M validation "
          f"forward passes (module doc); MFU {args.mfu}, {args.cores_per_gpu} loader cores and {args.disk_gbps} GB/s "
          "per GPU")
    head = (f"{'card':<6}{'prec':<6}{'HCR&LC/s GPU':>13}{'GB/s':>7}{'cores':>7}{'bound':>7}{'/s as bound':>12}"
            f"{'paper GPU-h':>12}{'h as bound':>11}")
    for title, table in (("uncompressed shards", rows), (f"S2 compressed with {best_codec}", rows_c)):
        if not table:
            continue
        print(f"\n{title} (HCR&LC-Net rows; JSON has every model):\n{head}")
        for r in table:
            if r["model"] == "hcr_lc_equal":
                print(f"{r['card']:<6}{r['precision']:<6}{r['gpu_samples_per_s']:>13.0f}{r['read_gbps']:>7.2f}"
                      f"{r['loader_cores']:>7.1f}{r['bound_by']:>7}{r['samples_per_s']:>12.0f}"
                      f"{r['paper_gpu_hours']:>12.1f}{r['paper_hours_as_bound']:>11.1f}")
    result = {"config": str(PAPER.relative_to(REPO)), "mfu": args.mfu, "cores_per_gpu": args.cores_per_gpu,
              "disk_gbps": args.disk_gbps, "models": models,
              "other_flops_gflop": {k: {kk: vv / 1e9 for kk, vv in v.items()} for k, v in flops.items()},
              "workload": {"runs": runs, "training_sample_passes": total_train, "validation_passes": total_val},
              "loader": loader, "compression": compression, "compression_used": best_codec,
              "cards": rows, "cards_compressed": rows_c, "seconds": time.perf_counter() - t0}
    if args.json:
        from hcrlc.atomic import write_json
        write_json(result, args.json)
        print(f"\nwrote {args.json}")
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
