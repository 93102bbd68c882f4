"""Synthetic SEN12MS and SEN12MS-CR trees in the exact real on-disk layout.

The demo and the tests run the real reading code on these trees, so every file is a GeoTIFF with the real
band count, dtype, a UTM CRS and a 10 m transform, at the path :mod:`hcrlc.data.layout` gives for it.

How a scene is simulated (all on one scene-sized canvas, so that overlapping patches agree exactly):

* A scene is ``(grid + 1) * stride`` px per side; ``grid × grid`` patches of ``patch_size`` px (SEN12MS: 256) are
  cut from it with stride ``patch_size / 2``, so a patch's east/south neighbour starts half a patch further on
  and overlaps it by 50 %, as in SEN12MS (128 px = 1280 m at 256 px).
* Land cover (lc band 1, IGBP 1–17): the argmax of a few smooth random fields, one per IGBP class of the
  scene's palette, gives spatially coherent regions. Palettes rotate over the sorted scene list so that any
  four consecutive scenes cover all ten simplified classes.
* S2 (clear, TOA reflectance): a class spectrum (:data:`IGBP_S2_REFLECTANCE`) with brightness texture and
  sensor noise; the 20 m and 60 m bands are blurred to their native resolution.
* S1 (dB): a class backscatter (:data:`IGBP_S1_DB`) with texture and multi-look gamma speckle.
* Cloudy S2: another acquisition of the same ground, days to weeks from the clear one (as in SEN12MS-CR), under
  one cloud layer of opacity ``alpha`` in [0, 1] whose spectrum mixes thick cloud, haze and cirrus
  (:data:`CLOUD_S2_REFLECTANCE`). Outside the clouds it differs from the clear image as two real dates do
  (:func:`_other_date`): illumination (a per-band gain), atmosphere (a smooth additive path-radiance change,
  strongest in the blue), vegetation phenology (red edge and NIR) and a few changed parcels, plus its own
  sensor noise. Where clouds are is a fractal field thresholded at the scene's cloudiness level; the levels
  follow the per-patch coverage the paper reports for each split (:data:`~hcrlc.paper.PAPER_CLOUD_COVERAGE`:
  58 ± 37 % train, 66 ± 37 % test), stratified within the hold-out scenes and within the others, so that even
  a handful of scenes per split spans clear to overcast with the paper's mean.
* S1 and S2 share the ground's fine structure: the field that varies S2 brightness within a land-cover region
  (canopy density, soil moisture) also varies the S1 backscatter, as on real ground.
* Truth: a pixel is cloudy if ``alpha >= TRUE_MASK_OPACITY``. Only :func:`measure_cloud_iou` reads it; the
  pipeline derives its masks with s2cloudless as on real data.

A scene's ground (every pixel of its canvas) depends only on the seed, the scene's rank in the sorted scene list
(palette and cloudiness are stratified over the set) and the canvas size: the patch size and the grid only decide
how the canvas is cut. So ``patch_size`` 64 with ``grid`` 19 and ``patch_size`` 256 with ``grid`` 4 (both a
640 px canvas) cut the same ground, and the same arguments give the same bytes.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from scipy import ndimage, stats
from tqdm import tqdm

from hcrlc.atomic import atomic_output
from hcrlc.data.layout import (
    scene_key,
    sen12ms_path,
    sen12mscr_path,
)
from hcrlc.errors import ConfigError, DataError
from hcrlc.paper import (
    CLASSES,
    HOLDOUT_SCENES,
    IGBP_TO_CLASS,
    PAPER_CLOUD_COVERAGE,
    PATCH_SIZE,
    PIXEL_SIZE_M,
    S2_BAND_NAMES,
    S2_BANDS,
    S2_SCALE,
    SEASON_DIRS,
)

log = logging.getLogger(__name__)

#: Opacity from which a pixel counts as cloudy in the true mask (thick cloud, or haze/cirrus at least this
#: dense). Chosen where stock s2cloudless (threshold 0.4) starts to flag the cloud spectra below over most
#: surfaces.
TRUE_MASK_OPACITY = 0.3

#: Rough Sentinel-2 L1C top-of-atmosphere reflectance per IGBP class (row k = IGBP id k + 1), bands in
#: paper.S2_BAND_NAMES order. The shapes are what matters: vegetation has a red edge (B05→B07) and a high NIR
#: plateau (B08, B8A), water is dark beyond the red, urban and barren are bright and flat with a high SWIR
#: (B11, B12), snow is very bright in the visible and dark in the SWIR. B01 and B02 include the atmosphere's
#: path radiance; B09 sits in a water-vapour absorption band; B10 (1375 nm) is absorbed by the atmosphere, so
#: the ground is nearly invisible there (≈ 0.001–0.01) and only high clouds show.
# fmt: off
#    B01   B02   B03   B04   B05   B06   B07   B08   B8A   B09   B10   B11   B12
IGBP_S2_REFLECTANCE = np.array([
    [.120, .085, .070, .045, .075, .170, .210, .230, .240, .080, .003, .120, .055],  # 1 evergreen needleleaf
    [.120, .085, .075, .045, .080, .210, .270, .300, .310, .100, .003, .150, .065],  # 2 evergreen broadleaf
    [.120, .090, .075, .050, .085, .190, .240, .260, .270, .090, .003, .140, .065],  # 3 deciduous needleleaf
    [.120, .090, .080, .050, .090, .230, .290, .320, .330, .100, .003, .160, .070],  # 4 deciduous broadleaf
    [.120, .088, .076, .048, .085, .200, .250, .270, .280, .090, .003, .140, .065],  # 5 mixed forest
    [.130, .100, .095, .090, .130, .190, .220, .240, .250, .085, .004, .240, .160],  # 6 closed shrubland
    [.135, .105, .105, .115, .145, .180, .200, .220, .230, .080, .004, .270, .200],  # 7 open shrubland
    [.125, .095, .085, .070, .110, .200, .240, .260, .270, .090, .004, .200, .120],  # 8 woody savanna
    [.130, .100, .095, .085, .125, .200, .230, .250, .260, .090, .004, .240, .150],  # 9 savanna
    [.130, .100, .090, .080, .120, .220, .260, .280, .290, .090, .004, .230, .140],  # 10 grassland
    [.120, .090, .080, .060, .080, .130, .150, .160, .160, .050, .003, .090, .050],  # 11 permanent wetland
    [.130, .100, .100, .080, .130, .280, .340, .370, .380, .110, .004, .220, .120],  # 12 cropland
    [.150, .130, .130, .140, .160, .180, .190, .200, .210, .080, .006, .240, .200],  # 13 urban
    [.130, .100, .095, .080, .125, .240, .290, .310, .320, .100, .004, .220, .130],  # 14 crop/natural mosaic
    [.600, .600, .600, .600, .600, .580, .560, .550, .540, .300, .010, .080, .060],  # 15 snow and ice
    [.160, .140, .170, .220, .250, .280, .300, .310, .320, .120, .007, .380, .320],  # 16 barren
    [.120, .090, .060, .040, .030, .020, .020, .020, .020, .010, .002, .010, .008],  # 17 water
], dtype=np.float32)

#: Mean Sentinel-1 backscatter per IGBP class in dB, (VV, VH): smooth water reflects away from the sensor
#: (very low), forests scatter in volume (high VH), buildings give double bounce (high VV).
IGBP_S1_DB = np.array([
    [-7.5, -13.5], [-7.0, -13.0], [-8.0, -14.5], [-8.0, -14.0], [-7.5, -13.5],  # forests 1-5
    [-9.5, -16.5], [-10.5, -18.0],  # shrublands 6-7
    [-8.5, -15.5], [-9.5, -17.0],  # savannas 8-9
    [-11.0, -18.5],  # grassland 10
    [-9.0, -17.0],  # wetland 11
    [-10.0, -17.0],  # cropland 12
    [-5.0, -12.0],  # urban 13
    [-9.5, -16.5],  # cropland/natural mosaic 14
    [-13.0, -21.0],  # snow and ice 15
    [-13.5, -23.0],  # barren 16
    [-20.0, -27.0],  # water 17
], dtype=np.float32)

#: Cloud spectra (TOA reflectance): thick cloud is bright and flat in VIS/NIR, lower in the SWIR, and its
#: high top shows in B10; haze is a dimmer, bluish, low layer (little B10); cirrus is thin ice, faint in the
#: visible but strong in B10.
#    B01   B02   B03   B04   B05   B06   B07   B08   B8A   B09   B10   B11   B12
CLOUD_S2_REFLECTANCE = np.array([
    [.500, .480, .470, .470, .480, .480, .490, .490, .490, .320, .060, .360, .240],  # thick
    [.350, .330, .310, .290, .280, .270, .260, .260, .260, .170, .020, .200, .130],  # haze
    [.200, .190, .180, .170, .170, .170, .170, .170, .170, .100, .100, .140, .100],  # cirrus
], dtype=np.float32)

# SEN12MS lc bands 2-4 hold the LCCS land cover, land use and surface hydrology layers; these tables give each
# IGBP class (index = IGBP id, 0 unused) a plausible LCCS id so the bands are not empty.
_LCCS_LC = np.array([0, 11, 12, 13, 14, 15, 41, 43, 21, 22, 31, 31, 31, 1, 31, 2, 1, 3], dtype=np.uint16)
_LCCS_LU = np.array([0, 10, 10, 10, 10, 10, 40, 40, 20, 20, 30, 30, 36, 9, 35, 2, 1, 3], dtype=np.uint16)
_LCCS_SH = np.array([0, 10, 10, 10, 10, 10, 40, 40, 20, 20, 30, 50, 30, 1, 30, 2, 1, 3], dtype=np.uint16)
# fmt: on

# Native resolution of each S2 band (m); SEN12MS resamples all of them to 10 m, so coarse bands are smooth.
_S2_NATIVE_RES_M = (60, 10, 10, 10, 20, 20, 20, 10, 20, 60, 60, 20, 20)

_S1_LOOKS = 4.4  # equivalent number of looks of Sentinel-1 GRD high resolution: sets the speckle strength
_S2_NOISE = 0.004  # reflectance: std of S2 sensor noise per 10 m pixel
_GROUPS_PER_SCENE = 4  # simplified classes in each scene's palette
#: Score offset per IGBP id (index; 0 unused) in the competition of a scene's classes for ground. SEN12MS samples
#: its scenes over the inhabited land masses, where permanent snow & ice (15) and permanent wetland (11) are the
#: rarest covers; without the offset every class of a palette takes ~1/4 of its scene, and a demo's hold-out
#: scenes could be a quarter snow, the one surface that S1 cannot tell from barren land under a thick cloud.
_RARE_COVER_OFFSET = np.zeros(18, dtype=np.float32)
_RARE_COVER_OFFSET[[11, 15]] = -1.0
_PALETTE_STEP = 3  # palette offset between consecutive scenes: any 4 consecutive scenes cover all 10 classes


# --- Random fields ------------------------------------------------------------------------------------------


def _standardise(field: np.ndarray) -> np.ndarray:
    field = field - field.mean(axis=(-2, -1), keepdims=True)
    return (field / field.std(axis=(-2, -1), keepdims=True)).astype(np.float32)


def _smooth_fields(
    rng: np.random.Generator, n: int, size: int, sigma_px: float, anisotropy: float = 1.0, angle: float = 0.0
) -> np.ndarray:
    """``n`` Gaussian-smoothed white-noise fields, (n, size, size) float32, zero mean, unit std.

    Filtered in the Fourier domain (periodic), which is far cheaper than a spatial filter of this width and
    lets ``anisotropy`` > 1 stretch the field along ``angle`` (radians), e.g. for cirrus streaks.
    """
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    along = kx * np.cos(angle) + ky * np.sin(angle)
    across = -kx * np.sin(angle) + ky * np.cos(angle)
    k2 = (along * anisotropy) ** 2 + across**2
    transfer = np.exp(-2.0 * np.pi**2 * sigma_px**2 * k2)
    noise = rng.standard_normal((n, size, size), dtype=np.float32)
    return _standardise(np.fft.irfft2(np.fft.rfft2(noise) * transfer, s=(size, size)))


def _fractal_field(rng: np.random.Generator, size: int, outer_scale_px: float, slope: float) -> np.ndarray:
    """One fractal (power-law) field, (size, size) float32, zero mean, unit std.

    Amplitude falls as ``k ** -slope`` above ``1 / outer_scale_px``: ragged, cloud-like edges at every scale.
    """
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    k2 = kx**2 + ky**2 + (1.0 / outer_scale_px) ** 2
    noise = rng.standard_normal((size, size), dtype=np.float32)
    return _standardise(np.fft.irfft2(np.fft.rfft2(noise) * k2 ** (-slope / 2.0), s=(size, size)))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# --- Scene content ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pixel:
    """The simulated pixel: every length of the generator is written in SEN12MS's 10 m pixels and converted here.

    ``metres`` (10 by default) > 10 simulates a coarser grid over the same ground (the demo's scale model): a
    region 200 px across at 10 m is 50 px across at 40 m. A coarse pixel also averages what a 10 m pixel would
    see: ``(metres / 10)**2`` times more looks of radar speckle and ``metres / 10`` times less S2 sensor noise.
    """

    metres: float = PIXEL_SIZE_M

    @property
    def per_10m(self) -> float:
        return PIXEL_SIZE_M / self.metres

    def px(self, length_10m_px: float) -> float:
        """A length given in 10 m pixels, in this grid's pixels."""
        return length_10m_px * self.per_10m

    @property
    def s1_looks(self) -> float:
        return _S1_LOOKS / self.per_10m**2

    @property
    def s2_noise(self) -> float:
        return _S2_NOISE * self.per_10m


@dataclass(frozen=True)
class _Scene:
    """One simulated scene on its full canvas (side = (grid + 1) * stride px); patches are windows of it."""

    s1: np.ndarray  # (2, H, W) float32 dB
    s2: np.ndarray  # (13, H, W) uint16 reflectance x 10,000
    s2_cloudy: np.ndarray  # (13, H, W) uint16 reflectance x 10,000
    lc: np.ndarray  # (4, H, W) uint16, band 1 IGBP
    truth: np.ndarray  # (H, W) bool true cloud mask


def _palette(rank: int, group_order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """IGBP ids (1-based) of one scene: a window of simplified classes that rotates with the scene's rank."""
    n = len(CLASSES)
    groups = [CLASSES[group_order[(rank * _PALETTE_STEP + k) % n]] for k in range(_GROUPS_PER_SCENE)]
    return np.array([rng.choice(IGBP_TO_CLASS[g]) for g in groups], dtype=np.int64)


def _land_cover(rng: np.random.Generator, size: int, palette: np.ndarray, pixel: _Pixel) -> np.ndarray:
    """IGBP map (size, size) uint16: coherent regions ~1–2 km across (100–200 px at 10 m) with ragged borders."""
    broad = _smooth_fields(rng, len(palette), size, sigma_px=pixel.px(36.0))
    detail = _smooth_fields(rng, len(palette), size, sigma_px=pixel.px(6.0))
    # Uneven class weights per scene, so that class fractions (and so the multi-label targets) vary.
    dominance = rng.uniform(-0.8, 0.8, size=len(palette)).astype(np.float32)[:, None, None]
    rarity = _RARE_COVER_OFFSET[palette.astype(np.int64)][:, None, None]
    return palette[np.argmax(broad + 0.2 * detail + dominance + rarity, axis=0)].astype(np.uint16)


def _surface_reflectance(rng: np.random.Generator, igbp: np.ndarray, ground: np.ndarray, pixel: _Pixel) -> np.ndarray:
    """Clear-sky surface as seen at TOA, (13, H, W) float32 reflectance, before sensor noise and blurring.

    ``ground`` (H, W): zero-mean, unit-std structure of the ground within regions, shared with S1.
    """
    size = igbp.shape[0]
    spectra = IGBP_S2_REFLECTANCE[igbp.astype(np.int64) - 1]  # (H, W, 13)
    # Brightness varies within a region (canopy density, soil moisture) on a 100 m and a 10 m scale.
    texture = _smooth_fields(rng, 2, size, sigma_px=pixel.px(1.0))
    vigour = 1.0 + 0.08 * ground + 0.05 * texture[0]
    surface = np.moveaxis(spectra, -1, 0) * vigour[None]
    # The NIR plateau varies more than the visible, as canopy structure changes it most.
    nir = [S2_BAND_NAMES.index(b) for b in ("B06", "B07", "B08", "B8A")]
    surface[nir] *= 1.0 + 0.05 * texture[1][None]
    # The ground is invisible in B10 (absorbed by water vapour): no surface texture there.
    b10 = S2_BAND_NAMES.index("B10")
    surface[b10] = spectra[..., b10]
    return surface


def _blur_to_native_resolution(bands: np.ndarray, pixel: _Pixel) -> np.ndarray:
    """Smooth the bands coarser than the pixel (at 10 m: the 20 m and 60 m ones) of (13, H, W) reflectance, as
    resampling them to the pixel grid leaves them."""
    out = bands.copy()
    for b, res in enumerate(_S2_NATIVE_RES_M):
        if res > pixel.metres:
            # A Gaussian of sigma ≈ 0.4 native pixels has about the footprint of the coarse pixel.
            out[b] = ndimage.gaussian_filter(bands[b], sigma=0.4 * res / pixel.metres, mode="wrap")
    return out


def _sensor(rng: np.random.Generator, toa: np.ndarray, pixel: _Pixel) -> np.ndarray:
    """Noise, native-resolution blur and quantisation: (13, H, W) float reflectance → uint16 ×10,000."""
    noisy = toa + rng.standard_normal(toa.shape, dtype=np.float32) * np.float32(pixel.s2_noise)
    blurred = _blur_to_native_resolution(noisy, pixel)
    return np.clip(np.rint(blurred * S2_SCALE), 1, 65535).astype(np.uint16)


def _backscatter(rng: np.random.Generator, igbp: np.ndarray, ground: np.ndarray, pixel: _Pixel) -> np.ndarray:
    """S1 (2, H, W) float32 dB (VV, VH): class mean, 1 dB texture and multi-look gamma speckle.

    The texture is mostly the ``ground`` structure that also varies S2 (denser canopy, wetter soil: more
    backscatter), partly the radar's own (surface roughness, look geometry).
    """
    size = igbp.shape[0]
    mean_db = np.moveaxis(IGBP_S1_DB[igbp.astype(np.int64) - 1], -1, 0)
    own = _smooth_fields(rng, 2, size, sigma_px=pixel.px(4.0))
    mean_db = mean_db + 0.8 * ground[None] + 0.6 * own  # unit std: 0.8² + 0.6² = 1
    speckle = rng.gamma(pixel.s1_looks, 1.0 / pixel.s1_looks, size=mean_db.shape).astype(np.float32)
    return (mean_db + 10.0 * np.log10(speckle)).astype(np.float32)


def _clouds(rng: np.random.Generator, size: int, level: float, pixel: _Pixel) -> tuple[np.ndarray, np.ndarray]:
    """One cloud layer: opacity (H, W) float32 in [0, 1] and its spectrum (13, H, W) float32 reflectance.

    ``level`` is the scene's cloudiness in [0, 1]: the fraction of the scene inside clouds (cover >= 0.5).
    """
    where = _fractal_field(rng, size, outer_scale_px=size / 2.0, slope=1.7)
    if level <= 0.0:
        cover = np.zeros((size, size), np.float32)
    else:
        threshold = np.quantile(where, 1.0 - min(level, 1.0))
        # Edges ramp over 0.4 std of the field: a few pixels wide, like real cloud edges at 10 m.
        cover = _smoothstep((where - threshold) / 0.4 + 0.5)

    # Which kind of cloud: softmax over three smooth fields, biased per scene so that thick clouds dominate
    # some scenes and haze or cirrus others; cirrus fields are streaky.
    kinds = np.concatenate(
        [
            _smooth_fields(rng, 2, size, sigma_px=pixel.px(40.0)),
            _smooth_fields(rng, 1, size, sigma_px=pixel.px(25.0), anisotropy=4.0, angle=rng.uniform(0.0, np.pi)),
        ]
    )
    bias = np.array([rng.uniform(0.0, 1.2), rng.uniform(-1.0, 0.5), rng.uniform(-1.0, 0.5)], np.float32)
    logits = (kinds + bias[:, None, None]) / 0.35
    weights = np.exp(logits - logits.max(axis=0, keepdims=True))
    weights /= weights.sum(axis=0, keepdims=True)

    # Peak opacity per kind: thick clouds are opaque, haze and cirrus semi-transparent.
    peak = np.array([1.0, rng.uniform(0.45, 0.7), rng.uniform(0.35, 0.55)], np.float32)
    opacity = cover * np.tensordot(peak, weights, axes=1)
    # Clouds are lumpy: ±10 % brightness texture.
    lumps = 1.0 + 0.1 * _smooth_fields(rng, 1, size, sigma_px=pixel.px(5.0))[0]
    spectrum = np.tensordot(CLOUD_S2_REFLECTANCE.T, weights, axes=1) * lumps[None]
    return opacity.astype(np.float32), spectrum.astype(np.float32)


def _cloudiness_levels(n: int, rng: np.random.Generator, mean: float, std: float) -> np.ndarray:
    """One cloudiness level in [0, 1] per scene, stratified over a Beta distribution of ``mean`` and ``std``.

    Scene ``k`` of a random order takes a random quantile within the ``k``-th of ``n`` equal strata, so that
    even two or three scenes span clear to overcast with about the wanted mean. With the paper's per-patch
    coverage (58 ± 37 %) the Beta is U-shaped: many acquisitions are almost clear or almost overcast, as real
    ones are.
    """
    quantiles = (rng.permutation(n) + rng.uniform(0.0, 1.0, n)) / n
    return stats.beta.ppf(quantiles, *_beta_parameters(mean, std)).astype(np.float64)


def _beta_parameters(mean: float, std: float) -> tuple[float, float]:
    """(a, b) of the Beta distribution with this mean and standard deviation (method of moments)."""
    k = mean * (1.0 - mean) / std**2 - 1.0
    if k <= 0:
        raise ConfigError(f"no Beta distribution has mean {mean} and std {std}; the std must be below "
                          f"{(mean * (1 - mean)) ** 0.5:.3f}")
    return mean * k, (1.0 - mean) * k


#: How much a second acquisition differs outside the clouds (illustrative magnitudes, not fitted to data):
#: the per-band gain of illumination and calibration, the additive path radiance of a change of aerosol optical
#: depth by ±0.1 (strongest in the blue, nil in the absorbed B10), and the fractional change of the red edge and
#: NIR of vegetation between two dates of one season.
_GAIN_SPREAD = 0.03
#    B01   B02   B03   B04   B05   B06   B07   B08   B8A   B09   B10   B11   B12
_PATH_RADIANCE = np.array(
    [.020, .016, .011, .008, .006, .005, .004, .004, .003, .002, 0.0, .001, .001], dtype=np.float32)
_PHENOLOGY_BANDS = ("B05", "B06", "B07", "B08", "B8A")
_PHENOLOGY_SPREAD = 0.10
_VEGETATION_IGBP = np.array([0] + [1] * 12 + [0, 1, 0, 0, 0], dtype=np.float32)  # index = IGBP id; 13 urban
_CHANGED_AREA = 0.03  # fraction of the scene whose surface changed between the dates (harvest, ploughing)


def _other_date(rng: np.random.Generator, surface: np.ndarray, igbp: np.ndarray, pixel: _Pixel) -> np.ndarray:
    """The clear-sky surface of ``surface`` (13, H, W) on another date of the same season, (13, H, W) float32."""
    size = igbp.shape[0]
    gain = rng.uniform(1.0 - _GAIN_SPREAD, 1.0 + _GAIN_SPREAD, S2_BANDS).astype(np.float32)[:, None, None]
    other = surface * gain
    # Phenology: vegetation greens up or browns down, the same way over the scene, by a patchy amount.
    vegetation = _VEGETATION_IGBP[igbp.astype(np.int64)]
    change = rng.uniform(-_PHENOLOGY_SPREAD, _PHENOLOGY_SPREAD) * (
        1.0 + 0.5 * _smooth_fields(rng, 1, size, sigma_px=pixel.px(30.0))[0])
    for band in _PHENOLOGY_BANDS:
        other[S2_BAND_NAMES.index(band)] *= 1.0 + change * vegetation
    # Atmosphere: another aerosol load, smoothly varying over the scene.
    aerosol = rng.uniform(-1.0, 1.0) + 0.5 * _smooth_fields(rng, 1, size, sigma_px=size / 6.0)[0]
    other = other + _PATH_RADIANCE[:, None, None] * aerosol[None]
    # A few parcels changed: harvested or ploughed fields look like bare soil on the other date.
    parcels = _smooth_fields(rng, 1, size, sigma_px=pixel.px(6.0))[0]
    changed = parcels > np.quantile(parcels, 1.0 - _CHANGED_AREA)
    other[:, changed] = 0.5 * other[:, changed] + 0.5 * IGBP_S2_REFLECTANCE[15][:, None]  # IGBP 16, barren
    return np.maximum(other, 0.0).astype(np.float32)


def _simulate_scene(rng: np.random.Generator, size: int, palette: np.ndarray, level: float,
                    pixel: _Pixel = _Pixel()) -> _Scene:
    igbp = _land_cover(rng, size, palette, pixel)
    ground = _smooth_fields(rng, 1, size, sigma_px=pixel.px(10.0))[0]
    surface = _surface_reflectance(rng, igbp, ground, pixel)
    s2 = _sensor(rng, surface, pixel)
    s1 = _backscatter(rng, igbp, ground, pixel)
    opacity, cloud = _clouds(rng, size, level, pixel)
    s2_cloudy = _sensor(rng, (1.0 - opacity) * _other_date(rng, surface, igbp, pixel) + opacity * cloud, pixel)
    lc = np.stack([igbp, _LCCS_LC[igbp], _LCCS_LU[igbp], _LCCS_SH[igbp]])
    return _Scene(s1=s1, s2=s2, s2_cloudy=s2_cloudy, lc=lc, truth=opacity >= TRUE_MASK_OPACITY)


# --- Files --------------------------------------------------------------------------------------------------


def _utm_georef(rng: np.random.Generator) -> tuple[int, float, float]:
    """EPSG code and upper-left corner (m) of a scene: a random UTM zone and hemisphere, 10 m aligned."""
    zone = int(rng.integers(1, 61))
    north = bool(rng.random() < 0.75)
    epsg = (32600 if north else 32700) + zone
    x0 = float(rng.integers(20_000, 70_000)) * PIXEL_SIZE_M
    y0 = float(rng.integers(100_000, 900_000)) * PIXEL_SIZE_M
    return epsg, x0, y0


def _patch_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` increasing patch ids from a scene-dependent start, skipping one to three ids one time in five."""
    steps = 1 + (rng.random(n) < 0.2) * rng.integers(1, 4, n)
    return int(rng.integers(1, 500)) + np.cumsum(steps) - steps[0]


def _geotiff_bytes(array: np.ndarray, epsg: int, transform: Affine) -> bytes:
    """Encode a (bands, H, W) array as an uncompressed GeoTIFF, like the published patches."""
    bands, height, width = array.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": bands,
        "dtype": array.dtype.name,
        "crs": CRS.from_epsg(epsg),
        "transform": transform,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(array)
        return mem.read()


def _write_atomic(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def _write_truth(path: Path, patch_ids: np.ndarray, masks: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, patch=patch_ids.astype(np.int64), mask=np.packbits(masks, axis=-1))
    _write_atomic(path, buffer.getvalue())


def _check_request(scenes: list[tuple[str, int]], grid: int, only_in_one_tree: int, patch_size: int) -> None:
    if patch_size < 2 or patch_size % 2:
        raise ConfigError(
            f"synthetic patch size must be a positive even number of px (the stride is half of it), got "
            f"{patch_size}; set `synthetic.patch_size` to an even number"
        )
    if grid < 1:
        raise ConfigError(
            f"synthetic grid must be >= 1 patch per side, got {grid}; set `synthetic.grid` >= 1"
        )
    if not scenes:
        raise ConfigError("the synthetic scene list is empty; list at least one scene in `synthetic.scenes`")
    for season, scene in scenes:
        if season not in SEASON_DIRS or scene < 0:
            raise ConfigError(
                f"synthetic scene ({season!r}, {scene!r}) is invalid; seasons are {list(SEASON_DIRS)} "
                "and scene numbers are non-negative integers"
            )
    if len(set(scenes)) != len(scenes):
        raise ConfigError(f"synthetic scene list {scenes} repeats a scene; list each (season, scene) once")
    n_patches = len(scenes) * grid * grid
    if only_in_one_tree < 0 or 2 * only_in_one_tree > n_patches:
        raise ConfigError(
            f"only_in_one_tree={only_in_one_tree} needs 2 x that many patches, but {len(scenes)} scene(s) x "
            f"{grid}x{grid} give {n_patches}; lower `synthetic.only_in_one_tree` or generate more patches"
        )


def generate_trees(
    sen12ms_root: str | Path,
    sen12mscr_root: str | Path,
    scenes: list[tuple[str, int]],
    grid: int,
    seed: int,
    only_in_one_tree: int = 2,
    truth_dir: str | Path | None = None,
    patch_size: int = PATCH_SIZE,
    pixel_size_m: float = PIXEL_SIZE_M,
) -> pd.DataFrame:
    """Write a synthetic SEN12MS tree (s1, s2, lc) and SEN12MS-CR tree (s1, s2, s2_cloudy) for ``scenes``.

    Each scene yields ``grid × grid`` patches of P × P px (P = ``patch_size``, SEN12MS's 256 by default) of
    ``pixel_size_m`` (SEN12MS's 10 m by default; larger simulates the same kind of ground on a coarser grid, see
    :class:`_Pixel`), cut with stride P / 2 from one simulated area of ``(grid + 1) * P / 2`` px per side, in a UTM
    CRS of its own. Patch ids follow raster order but start at a scene-dependent offset and skip some numbers:
    neighbours must be found from the transforms (a neighbour's origin is P / 2 pixels away), not from the ids.

    Files: S1 (2, P, P) float32 dB (VV, VH); S2 and cloudy S2 (13, P, P) uint16 reflectance ×10,000 in
    ``paper.S2_BAND_NAMES`` order; lc (4, P, P) uint16, band 1 IGBP 1–17. SEN12MS and SEN12MS-CR share the
    same S1 and clear S2 bytes. ``only_in_one_tree`` patches per tree are written to that tree only.

    If ``truth_dir`` is given, ``{truth_dir}/{season}_{scene}.npz`` holds ``patch`` (n,) int64 and ``mask``
    (n, P, ceil(P / 8)) uint8 = ``np.packbits`` of the true (n, P, P) bool cloud masks along the last axis; read
    it with :func:`read_truth`.

    Returns one row per generated patch: ``season, scene, patch, row, col, in_sen12ms, in_sen12mscr,
    cloud_fraction_true`` (fraction of the patch with cloud opacity >= :data:`TRUE_MASK_OPACITY`).
    Deterministic: the same arguments give the same bytes.
    """
    scenes = [(season, int(scene)) for season, scene in scenes]
    _check_request(scenes, grid, only_in_one_tree, patch_size)
    if not pixel_size_m >= PIXEL_SIZE_M:
        raise ConfigError(f"synthetic.pixel_size_m must be >= {PIXEL_SIZE_M:g} (SEN12MS's pixel; the generator's "
                          f"lengths are written at 10 m and can only be coarsened), got {pixel_size_m!r}")
    pixel = _Pixel(float(pixel_size_m))
    stride = patch_size // 2
    size = (grid + 1) * stride
    season_index = {season: i for i, season in enumerate(SEASON_DIRS)}
    ordered = sorted(scenes, key=lambda s: (season_index[s[0]], s[1]))
    set_rng = np.random.default_rng([seed, 0])
    group_order = set_rng.permutation(len(CLASSES))
    holdout = np.array([scene in HOLDOUT_SCENES[season] for season, scene in ordered])
    levels = np.empty(len(ordered))
    for split, members in (("test", holdout), ("train", ~holdout)):
        levels[members] = _cloudiness_levels(int(members.sum()), set_rng, *PAPER_CLOUD_COVERAGE[split])
    per_scene = grid * grid
    roots = (sen12ms_root, sen12mscr_root)
    lonely = set_rng.choice(len(ordered) * per_scene, size=2 * only_in_one_tree, replace=False).tolist()
    only_sen12ms, only_sen12mscr = set(lonely[:only_in_one_tree]), set(lonely[only_in_one_tree:])

    rows: list[dict] = []
    progress = tqdm(ordered, desc="synthetic scenes", unit="scene", disable=None)
    for rank, (season, scene) in enumerate(progress):
        rng = np.random.default_rng([seed, 1, season_index[season], scene])
        georef = _utm_georef(rng)
        # the ids from a stream of their own: their number (grid²) must not shift the ground's random draws
        patch_ids = _patch_ids(np.random.default_rng([seed, 2, season_index[season], scene]), per_scene)
        sim = _simulate_scene(rng, size, _palette(rank, group_order, rng), float(levels[rank]), pixel)
        masks = _write_scene_patches(sim, patch_ids, (grid, patch_size, pixel.metres), georef, (season, scene), roots,
                                     rank * per_scene, (only_sen12ms, only_sen12mscr), rows)
        if truth_dir is not None:
            _write_truth(Path(truth_dir) / f"{scene_key(season, scene)}.npz", patch_ids, np.stack(masks))
    log.info("wrote %d synthetic patches of %d scene(s) to %s and %s", len(rows), len(ordered), *roots)
    return pd.DataFrame(rows)


def _write_scene_patches(sim: _Scene, patch_ids: np.ndarray, cut: tuple[int, int, float],
                         georef: tuple[int, float, float],
                         where: tuple[str, int], roots: tuple[str | Path, str | Path], first: int,
                         lonely: tuple[set[int], set[int]], rows: list[dict]) -> list[np.ndarray]:
    """Cut one simulated scene ``sim`` into its ``grid × grid`` patches of ``patch_size`` px and write them to both
    trees.

    ``cut``: (grid, patch_size, pixel size in m); ``georef``: EPSG code and the scene's top-left corner (m); ``where``: (season, scene); ``roots``: the
    SEN12MS and SEN12MS-CR roots; ``first``: the index of the scene's first patch over all scenes; ``lonely``: those
    indices of the patches written only to SEN12MS, only to SEN12MS-CR. Appends one row per patch (as
    :func:`generate_trees` returns) to ``rows``; returns the true (patch_size, patch_size) cloud masks.
    """
    (epsg, x0, y0), (season, scene), (sen12ms_root, sen12mscr_root), (only_sen12ms, only_sen12mscr) = (
        georef, where, roots, lonely)
    grid, patch_size, res = cut
    stride = patch_size // 2
    masks = []
    for i, patch in enumerate(patch_ids.tolist()):
        r, c = divmod(i, grid)
        in_sen12ms = first + i not in only_sen12mscr
        in_sen12mscr = first + i not in only_sen12ms
        top, left = r * stride, c * stride
        window = np.s_[:, top : top + patch_size, left : left + patch_size]
        x, y = x0 + left * res, y0 - top * res
        transform = Affine(res, 0.0, x, 0.0, -res, y)
        s1 = _geotiff_bytes(sim.s1[window], epsg, transform)
        s2 = _geotiff_bytes(sim.s2[window], epsg, transform)
        if in_sen12ms:
            lc = _geotiff_bytes(sim.lc[window], epsg, transform)
            for kind, data in (("s1", s1), ("s2", s2), ("lc", lc)):
                _write_atomic(sen12ms_path(sen12ms_root, kind, season, scene, patch), data)
        if in_sen12mscr:
            cloudy = _geotiff_bytes(sim.s2_cloudy[window], epsg, transform)
            for kind, data in (("s1", s1), ("s2", s2), ("s2_cloudy", cloudy)):
                _write_atomic(sen12mscr_path(sen12mscr_root, kind, season, scene, patch), data)
        masks.append(sim.truth[window[1:]])
        rows.append({"season": season, "scene": scene, "patch": patch, "row": r, "col": c,
                     "in_sen12ms": in_sen12ms, "in_sen12mscr": in_sen12mscr,
                     "cloud_fraction_true": float(masks[-1].mean())})
    return masks


def read_truth(truth_dir: str | Path, season: str, scene: int) -> dict[int, np.ndarray]:
    """True cloud masks of one scene written by :func:`generate_trees`: patch id → (P, P) bool, P the scene's patch
    size (read from the file)."""
    path = Path(truth_dir) / f"{scene_key(season, scene)}.npz"
    if not path.is_file():
        raise DataError(path, "no true cloud masks for this scene", "generate the trees with `truth_dir` set")
    with np.load(path) as f:
        packed = f["mask"]
        masks = np.unpackbits(packed, axis=-1, count=packed.shape[1]).astype(bool)  # (n, P, ceil(P/8)): P rows
        return dict(zip(f["patch"].tolist(), masks))
