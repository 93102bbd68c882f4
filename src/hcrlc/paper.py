"""Constants fixed by the paper, the data sets' publications and the authors' code — in one place.

Sources are named per constant: [P] Gu et al. 2022 (the paper), [A] the authors' code (GitHub Gu-ZQ/HCR-LC-Net),
[MS] SEN12MS (Schmitt et al. 2019) and its official loaders, [CR] SEN12MS-CR (Ebel et al. 2020),
[L] Schmitt & Wu 2021 (SEN12MS label refinement).
"""

from __future__ import annotations

# --- Data layout [MS], [CR] -------------------------------------------------------------------------------------
#: Season directory stem per season name; the stem is repeated in every file name of that season.
SEASON_DIRS: dict[str, str] = {
    "spring": "ROIs1158_spring",
    "summer": "ROIs1868_summer",
    "fall": "ROIs1970_fall",
    "winter": "ROIs2017_winter",
}
SEASONS: tuple[str, ...] = tuple(SEASON_DIRS)

#: SEN12MS's (and so the paper's) patch side and stride in pixels [MS]. Only the check of the real trees (they must
#: hold 256 px patches), the default of ``synthetic.patch_size`` and the paper-scale benchmarks read these: the code
#: that handles patches reads their size from the data (shards, ``index.parquet``'s ``patch_px``, a checkpoint's
#: ``patch_size``), and the stride is always half of it (:func:`hcrlc.patch_geometry.patch_stride`).
PATCH_SIZE = 256  # pixels [MS]
PATCH_STRIDE = 128  # pixels: patches overlap by 50 % [MS]
PIXEL_SIZE_M = 10.0  # metres [MS]

S1_BANDS = 2  # VV, VH, float32 dB [MS]
S2_BANDS = 13  # B1..B12 incl. B8A and B10, uint16 reflectance x 10,000 [MS]
LC_BANDS = 4  # band 1 = IGBP class 1..17 [MS]
S2_BAND_NAMES: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)

#: Patches dropped by name, (season, scene, patch): the authors' code drops ``ROIs1868_summer_s2_146_p202`` (the
#: SEN12MS patch whose S1 is known to hold NaNs [MS]) and keeps every other patch, S1 NaN read as 0 [A]
#: (a second one, ``ROIs1868_summer_s2_43_p363``, is commented out there, i.e. kept).
DROPPED_PATCHES: tuple[tuple[str, int, int], ...] = (("summer", 146, 202),)

# --- Split [MS], [P] ----------------------------------------------------------------------------------------------
#: SEN12MS hold-out (test) scenes per season [MS], [P].
HOLDOUT_SCENES: dict[str, frozenset[int]] = {
    "spring": frozenset({15, 17, 63, 97, 124, 146}),
    "summer": frozenset({15, 19, 43, 72, 79, 104, 131}),
    "fall": frozenset({30, 35, 39, 47, 61, 120, 141, 144}),
    "winter": frozenset({32, 64, 107, 135, 146}),
}
#: Patch counts of the paper's split on SEN12MS ∩ SEN12MS-CR [P]; the authors' split files hold train 102,811 +
#: val 6,738 = 109,549 and test 12,666 (``bootstrapping_list_13.pkl``) [A]: 122,215 of SEN12MS-CR's 122,218 [CR].
PAPER_N_TRAINVAL = 109_549
PAPER_N_TEST = 12_666

# --- Labels [L] ---------------------------------------------------------------------------------------------------
N_IGBP = 17
#: The 10 simplified classes and the 1-based IGBP ids summed into each.
CLASSES: tuple[str, ...] = (
    "forest", "shrubland", "savanna", "grassland", "wetland",
    "croplands", "urban", "snow_ice", "barren", "water",
)
IGBP_TO_CLASS: dict[str, tuple[int, ...]] = {
    "forest": (1, 2, 3, 4, 5),
    "shrubland": (6, 7),
    "savanna": (8, 9),
    "grassland": (10,),
    "wetland": (11,),
    "croplands": (12, 14),
    "urban": (13,),
    "snow_ice": (15,),
    "barren": (16,),
    "water": (17,),
}
LABEL_THRESHOLD = 0.1  # a class is present if its fraction >= 0.1 [L]
PREDICTION_THRESHOLD = 0.5  # sigmoid >= 0.5 [A]
TARGET_COLUMNS: tuple[str, ...] = tuple(f"y_{c}" for c in CLASSES)

# --- Input scaling [A] --------------------------------------------------------------------------------------------
S2_SCALE = 10_000.0  # reflectance: clip to [0, 10000], divide
S1_CLIP_DB = (-25.0, 0.0)
S1_MEAN = (-11.76858, -18.294598)  # VV, VH [MS official LCC loaders]
S1_STD = (4.525339, 4.3586307)

# --- Cloud masks: s2cloudless S2PixelCloudDetector parameters ----------------------------------------------------
MASK_PRESETS: dict[str, dict[str, float | int]] = {
    "authors": {"threshold": 0.4, "average_over": 1, "dilation_size": 1},  # [A] library defaults
    "sen12mscr": {"threshold": 0.4, "average_over": 4, "dilation_size": 2},  # [CR] tooling
}
PAPER_CLOUD_COVERAGE = {"train": (0.58, 0.37), "test": (0.66, 0.37)}  # mean, std [P]

# --- Optimisation [P] ---------------------------------------------------------------------------------------------
EPOCHS = 10
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-5

# --- Results [P] --------------------------------------------------------------------------------------------------
#: Table 1: learnable parameters.
TABLE1_PARAMS: dict[str, int] = {
    "lc_net": 103_851_050,
    "hcr_lc": 106_899_319,
    "hcr_c_net": 107_473_335,
}
#: Table 2: test-split precision, recall, F1 (micro), PSNR, SSIM; None where the model has no such output.
TABLE2: dict[str, dict[str, float | None]] = {
    "lc_net": {"precision": 0.6759, "recall": 0.6650, "f1": 0.6704, "psnr": None, "ssim": None},
    "hcr_net": {"precision": None, "recall": None, "f1": None, "psnr": 27.9342, "ssim": 0.8975},
    "hcr_lc_equal": {"precision": 0.7042, "recall": 0.6572, "f1": 0.6799, "psnr": 27.4370, "ssim": 0.8844},
    "hcr_lc_uncertain": {"precision": 0.6697, "recall": 0.7004, "f1": 0.6847, "psnr": 27.8973, "ssim": 0.8941},
    "hcr_c_net": {"precision": 0.6831, "recall": 0.6823, "f1": 0.6827, "psnr": None, "ssim": None},
}
LABEL_FRACTIONS: tuple[int, ...] = (25, 50, 75, 100)  # percent, Fig. 4 [P]
