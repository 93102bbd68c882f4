"""The ``hcrlc`` console command (``[project.scripts]``): use trained models without Snakemake.

    hcrlc predict --checkpoint results/models/hcr_lc_uncertain/best.pt --s2 cloudy_L1C.tif --s1 S1_dB.tif --out DIR
    hcrlc demo-scene --out DIR          # real S2 L1C pixels (s2cloudless's test scene) + synthetic S1

``python -m hcrlc.cli …`` does the same. Errors the library raises on purpose (bad input, wrong checkpoint) are
printed as one line naming the file and the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from hcrlc.errors import HcrlcError
from hcrlc.paper import MASK_PRESETS

_AUTHORS = MASK_PRESETS["authors"]


def _parser() -> argparse.ArgumentParser:
    from hcrlc.predict import PREDICT_DEFAULTS

    parser = argparse.ArgumentParser(
        prog="hcrlc", description="Haze & cloud removal and land-cover classification (Gu et al. 2022) on your "
        "own Sentinel-1/2 scenes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "predict", help="run a trained model on a scene: cloud_free.tif, cloud_mask.tif, landcover.tif, "
        "summary.json, quicklook.png",
        description="Run a trained best.pt on an S2 L1C scene (13 bands, uint16, projected CRS, >= one window) "
        "with S1 VV/VH in dB on any grid covering it; write Cloud-Optimized GeoTIFFs on the S2 grid into OUT.")
    p.add_argument("--checkpoint", required=True, help="a best.pt written by the workflow (results/models/RUN/)")
    p.add_argument("--s2", required=True, help="Sentinel-2 L1C GeoTIFF, 13 bands B01..B12 (with B8A, B10)")
    p.add_argument("--s1", required=True, help="Sentinel-1 GeoTIFF, VV and VH in dB, any CRS covering the S2")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--name", default=None, help="scene name in summary.json (default: the S2 file's stem)")
    p.add_argument("--overlap", type=int, default=PREDICT_DEFAULTS["overlap"],
                   help="pixels shared by neighbouring windows of the checkpoint's patch size (default: a quarter "
                   "of the window, 64 px for 256 px patches)")
    p.add_argument("--batch-size", type=int, default=PREDICT_DEFAULTS["batch_size"],
                   help="windows per forward pass (default %(default)s)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=PREDICT_DEFAULTS["device"])
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch, GDAL and the cloud masks")
    p.add_argument("--threshold", type=float, default=_AUTHORS["threshold"], help="s2cloudless threshold")
    p.add_argument("--average-over", type=int, default=_AUTHORS["average_over"],
                   help="s2cloudless disk-averaging radius (px)")
    p.add_argument("--dilation-size", type=int, default=_AUTHORS["dilation_size"],
                   help="s2cloudless dilation radius (px)")
    p.add_argument("--mask-engine", choices=["fast", "stock"], default="fast",
                   help="fast = exact re-implementation of s2cloudless; stock = s2cloudless itself")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")

    d = sub.add_parser("demo-scene", help="write a demo scene: real S2 L1C pixels (UTM) + synthetic S1 (lon/lat)",
                       description="Write s2_l1c.tif (s2cloudless's real L1C test pixels at a made-up UTM "
                       "position; pip downloads them once) and s1_db.tif (synthetic, EPSG:4326) into OUT.")
    d.add_argument("--out", required=True, help="output folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "predict":
            from hcrlc.predict import PredictSettings, predict_scene

            settings = PredictSettings(overlap=args.overlap, batch_size=args.batch_size, device=args.device,
                                       threshold=args.threshold, average_over=args.average_over,
                                       dilation_size=args.dilation_size, mask_engine=args.mask_engine,
                                       threads=args.threads)
            summary = predict_scene(args.checkpoint, args.s2, args.s1, args.out, settings, name=args.name,
                                    progress=not args.quiet)
            print(f"{summary['scene']}: {', '.join(summary['outputs'])} in {args.out}")
        elif args.command == "demo-scene":
            from hcrlc.demo_scene import write_demo_scene

            s2, s1 = write_demo_scene(args.out)
            print(f"--s2 {s2} --s1 {s1}")
    except HcrlcError as err:
        print(f"hcrlc {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
