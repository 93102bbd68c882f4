"""Torch dataset over the packed per-scene shards, addressed through ``index.parquet``.

Nothing is loaded up front: each worker process memory-maps the scene arrays it touches on first use. A sample is
prepared as in the authors' code: S2 (cloudy and clear) clipped to [0, 10000] and divided by 10,000; S1 NaN -> 0,
clipped to [-25, 0] dB and standardised with the SEN12MS mean/std (``np.nan_to_num`` then clip, so +inf -> 0 dB
and -inf -> -25 dB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from hcrlc.data.clouds import packed_bytes, unpack_masks
from hcrlc.data.layout import scene_key
from hcrlc.data.shards import check_npy, check_scene_shard, open_shard, rebuild_fix, shard_patch_px
from hcrlc.errors import DataError
from hcrlc.paper import S1_CLIP_DB, S1_MEAN, S1_STD, S2_SCALE, TARGET_COLUMNS
from hcrlc.patch_geometry import PIXEL_SIZE_RTOL

_S1_MEAN = np.asarray(S1_MEAN, dtype=np.float32)[:, None, None]
_S1_STD = np.asarray(S1_STD, dtype=np.float32)[:, None, None]


def prepare_s2(dn: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(..., 13, H, W) uint16 reflectance x 10,000 -> float32 in [0, 1] (written into ``out`` when given).

    Equal to float32(clip(dn, 0, 10000)) / 10000, in two passes: unsigned values need no lower clip.
    """
    if dn.dtype == np.uint16:
        clipped = np.minimum(dn, np.uint16(S2_SCALE))
    else:
        clipped = np.clip(dn.astype(np.float32), 0.0, S2_SCALE)
    return np.divide(clipped, np.float32(S2_SCALE), out=out, dtype=np.float32)


def prepare_s1(db: np.ndarray) -> np.ndarray:
    """(..., 2, H, W) float32 dB -> NaN to 0, clip to [-25, 0] dB (±inf to the bounds), standardise per band."""
    x = np.nan_to_num(db.astype(np.float32), nan=0.0, posinf=S1_CLIP_DB[1], neginf=S1_CLIP_DB[0])
    return (np.clip(x, *S1_CLIP_DB) - _S1_MEAN) / _S1_STD


def load_index(index_path: str | Path, split: str | None = None) -> pd.DataFrame:
    """Read index.parquet, optionally one split."""
    index_path = Path(index_path)
    if not index_path.is_file():
        raise DataError(index_path, "index missing", "run the data stage first: snakemake data")
    df = pd.read_parquet(index_path)
    if split is not None:
        df = df[df["split"] == split].reset_index(drop=True)
    return df


def frame_pixel_size(frame: pd.DataFrame, shards_dir: str | Path) -> float | None:
    """The one pixel size (m) of the patches of ``frame`` (its ``res`` column, as ``index.parquet`` has it); None
    for an empty frame or one without ``res``.

    A frame mixing pixel sizes is a :class:`DataError` naming a scene of each size: the networks learn features
    of one ground resolution, and the pretext's neighbour offsets and predict's resampling assume one.
    """
    if "res" not in frame.columns or frame.empty:
        return None
    res = frame["res"].to_numpy(dtype=np.float64)
    first = float(res[0])
    other = np.abs(res - first) > PIXEL_SIZE_RTOL * np.maximum(np.abs(res), abs(first))  # same_pixel_size, vectorised
    if other.any():
        scenes = [scene_key(s, c) for s, c in zip(frame["season"], frame["scene"])]
        odd = int(np.argmax(other))
        raise DataError(Path(shards_dir) / scenes[odd],
                        f"holds {res[odd]:g} m pixels, scene {scenes[0]} of the same split {first:g} m pixels: a run "
                        "takes patches of one pixel size",
                        "rebuild the shards and the index from trees of one pixel size (snakemake data; a "
                        "synthetic tree takes synthetic.pixel_size_m)")
    return first


class TripletDataset(Dataset):
    """(cloudy S2 + S1, clear S2, cloud mask, targets) samples of one split.

    Each item is a dict of tensors:
    ``x`` (15, H, W) float32 = 13 cloudy S2 bands in [0, 1] then 2 standardised S1 bands;
    ``s2`` (13, H, W) float32 clear S2 in [0, 1]; ``mask`` (1, H, W) float32 cloud mask in {0, 1};
    ``y`` (10,) float32 multi-hot targets; ``cloud_fraction`` () float32; ``idx`` () int64 row of ``frame``.
    H = W = ``patch_px``, the patch size of the shards (one for every scene of ``frame``; None for an empty frame).
    ``pixel_size_m``: the pixel side in metres, the one ``res`` of ``frame`` (the index's column, read from the
    GeoTIFF transforms; SEN12MS: 10); None for an empty frame or one without the column.
    """

    def __init__(self, frame: pd.DataFrame, shards_dir: str | Path, masks_dir: str | Path, raw: bool = False) -> None:
        self.raw = raw
        self.frame = frame.reset_index(drop=True)
        self.shards_dir = Path(shards_dir)
        self.masks_dir = Path(masks_dir)
        self._scene = [scene_key(s, c) for s, c in zip(self.frame["season"], self.frame["scene"])]
        self._row = self.frame["row"].to_numpy(dtype=np.int64)
        self._y = np.array(self.frame[list(TARGET_COLUMNS)].to_numpy(dtype=np.float32))  # own, writable copy
        self._cf = np.array(self.frame["cloud_fraction"].to_numpy(dtype=np.float32))
        self._open: dict[str, dict[str, np.ndarray]] = {}
        self._check_files()
        self.pixel_size_m = frame_pixel_size(self.frame, self.shards_dir)

    def _check_files(self) -> None:
        """Check every scene's shard and mask file before any sample is read (headers and sizes only): a damaged
        file is a DataError naming it now, not an mmap error in a loader worker after hours of training. Sets
        ``patch_px``: all scenes must hold patches of one size, and their masks that size too."""
        scenes = np.asarray(self._scene)
        self.patch_px: int | None = None
        for scene in np.unique(scenes):
            rows = self._row[scenes == scene]
            n = check_scene_shard(self.shards_dir / scene, rows)
            side = shard_patch_px(self.shards_dir / scene)
            if self.patch_px is not None and side != self.patch_px:
                raise DataError(self.shards_dir / scene, f"holds {side} px patches, other scenes of this split "
                                f"{self.patch_px} px: a run takes patches of one size",
                                "rebuild the shards and the index from trees of one patch size (snakemake data)")
            self.patch_px = side
            mask_path = self.masks_dir / scene / "mask.npy"
            shape, _ = check_npy(mask_path)
            if shape != (n, packed_bytes(side)):
                raise DataError(mask_path, f"holds masks of shape {shape}, the scene's shard {n} patches of {side} px "
                                f"({packed_bytes(side)} bytes each, bit-packed)", rebuild_fix(mask_path))

    def __len__(self) -> int:
        return len(self.frame)

    def _arrays(self, scene: str) -> dict[str, np.ndarray]:
        arrays = self._open.get(scene)
        if arrays is None:
            shard = self.shards_dir / scene
            arrays = {name: open_shard(shard, name) for name in ("s1", "s2", "s2_cloudy")}
            arrays["mask"] = np.load(self.masks_dir / scene / "mask.npy", mmap_mode="r")  # checked in __init__
            self._open[scene] = arrays
        return arrays

    def __getstate__(self) -> dict:
        # memmaps are reopened in each worker process rather than pickled
        state = self.__dict__.copy()
        state["_open"] = {}
        return state

    def cloudy_s2(self, i: int) -> np.ndarray:
        """(13, H, W) prepared cloudy S2 of row ``i``."""
        return prepare_s2(self._arrays(self._scene[i])["s2_cloudy"][self._row[i]])

    def s1(self, i: int) -> np.ndarray:
        """(2, H, W) prepared S1 of row ``i``."""
        return prepare_s1(self._arrays(self._scene[i])["s1"][self._row[i]])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self.raw:
            return self.raw_item(i)
        a = self._arrays(self._scene[i])
        r = self._row[i]
        cloudy = a["s2_cloudy"][r]
        x = np.empty((cloudy.shape[0] + 2, *cloudy.shape[1:]), dtype=np.float32)
        prepare_s2(cloudy, out=x[: cloudy.shape[0]])
        x[cloudy.shape[0] :] = prepare_s1(a["s1"][r])
        mask = unpack_masks(a["mask"][r], size=x.shape[-1])[None]
        return {
            "x": torch.from_numpy(x),
            "s2": torch.from_numpy(prepare_s2(a["s2"][r])),
            "mask": torch.from_numpy(mask.astype(np.float32)),
            "y": torch.from_numpy(self._y[i]),
            "cloud_fraction": torch.tensor(self._cf[i]),
            "idx": torch.tensor(i, dtype=torch.int64),
        }

    def raw_item(self, i: int) -> dict[str, torch.Tensor]:
        """The stored arrays of row ``i``, for :func:`prepare_batch` on the training device.

        ``s2_cloudy``, ``s2``: (13, H, W) uint16 DN as stored (half the bytes of float; clipped on the device);
        ``s1``: (2, H, W) float32 dB as stored; ``mask``: (H*W/8,) uint8 bit-packed; ``y``,
        ``cloud_fraction``, ``idx`` as in ``__getitem__``.
        """
        a = self._arrays(self._scene[i])
        r = self._row[i]
        return {
            "s2_cloudy": torch.from_numpy(np.array(a["s2_cloudy"][r])),
            "s2": torch.from_numpy(np.array(a["s2"][r])),
            "s1": torch.from_numpy(np.array(a["s1"][r])),
            "mask": torch.from_numpy(np.array(a["mask"][r])),
            "y": torch.from_numpy(self._y[i]),
            "cloud_fraction": torch.tensor(self._cf[i]),
            "idx": torch.tensor(i, dtype=torch.int64),
        }

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        """A whole batch of raw items, as :func:`collate_items` of ``[self.raw_item(i) for i in indices]`` would
        give it, with each stored array copied once, straight from the memory map into the batch tensor (the
        DataLoader calls this with a batch's indices). ``raw_item`` + ``default_collate`` copy every byte twice
        into freshly allocated memory; this halves the copies and page faults of a loader worker
        (``benchmarks/paper_scale.py`` measures both). Prepared items (``raw=False``) stay a list of samples.
        """
        if not self.raw:
            return [self[i] for i in indices]
        indices = [int(i) for i in indices]
        out: dict[str, torch.Tensor] = {}
        for name in _RAW_ARRAYS:
            first = self._arrays(self._scene[indices[0]])[name]
            batch = _batch_tensor((len(indices), *first.shape[1:]), first.dtype)
            view = batch.numpy()
            for j, i in enumerate(indices):
                view[j] = self._arrays(self._scene[i])[name][self._row[i]]
            out[name] = batch
        out["y"] = torch.from_numpy(self._y[indices])
        out["cloud_fraction"] = torch.from_numpy(self._cf[indices])
        out["idx"] = torch.tensor(indices, dtype=torch.int64)
        return out


#: the stored arrays a raw item holds
_RAW_ARRAYS = ("s2_cloudy", "s2", "s1", "mask")


def _batch_tensor(shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor for a batch; in a loader worker in shared memory, as ``default_collate`` makes
    it there (same calls), so handing the batch to the main process copies nothing."""
    elem = torch.from_numpy(np.empty(0, dtype=dtype))
    if get_worker_info() is None:
        return torch.empty(shape, dtype=elem.dtype)
    storage = elem._typed_storage()._new_shared(int(np.prod(shape)), device=elem.device)
    return elem.new(storage).resize_(shape)


def collate_items(batch: list[dict[str, torch.Tensor]] | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The DataLoader ``collate_fn`` for :class:`TripletDataset`: a batch :meth:`TripletDataset.__getitems__`
    already built passes through; a list of items goes to ``default_collate``."""
    return batch if isinstance(batch, dict) else default_collate(batch)


_BIT_SHIFTS = torch.arange(7, -1, -1, dtype=torch.uint8)


def prepare_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Turn a batch of :meth:`TripletDataset.raw_item` samples into the prepared ``x``, ``s2``, ``mask`` tensors,
    on whatever device the batch is on (the GPU, when training there: the loader only copies bytes).

    Bitwise equal to the prepared items of ``TripletDataset(raw=False)``. Batches already prepared pass through.
    """
    if "x" in batch:
        return batch
    dev = batch["s2_cloudy"].device
    scale = torch.tensor(S2_SCALE, dtype=torch.float32, device=dev)
    s1 = torch.nan_to_num(batch["s1"].float(), nan=0.0, posinf=S1_CLIP_DB[1], neginf=S1_CLIP_DB[0])
    s1 = s1.clamp_(*S1_CLIP_DB)
    s1 = (s1 - torch.from_numpy(_S1_MEAN).to(dev)) / torch.from_numpy(_S1_STD).to(dev)
    x = torch.cat([batch["s2_cloudy"].float().clamp_(max=S2_SCALE) / scale, s1], dim=1)
    n, _, h, w = x.shape
    bits = (batch["mask"].unsqueeze(-1) >> _BIT_SHIFTS.to(dev)) & 1
    out = {k: v for k, v in batch.items() if k not in ("s2_cloudy", "s1")}
    mask = bits.reshape(n, -1)[:, : h * w].reshape(n, 1, h, w)  # packbits pads the last byte unless 8 | h * w
    out.update(x=x, s2=batch["s2"].float().clamp_(max=S2_SCALE) / scale, mask=mask.float())
    return out
