"""The ``hcrlc`` console command (``[project.scripts]``): use trained models without Snakemake.

    hcrlc predict --checkpoint results/models/hcr_lc_uncertain/best.pt --s2 cloudy_L1C.tif --s1 S1_dB.tif --out DIR
    hcrlc demo-scene --out DIR          # real S2 L1C pixels (s2cloudless's test scene) + synthetic S1
    hcrlc import-authors-checkpoint --network hcr_lc_uncertain --checkpoint THEIRS.pth --out DIR
    hcrlc evaluate --checkpoint DIR/best.pt --results results --out results/eval/NAME

``python -m hcrlc.cli …`` does the same. Errors the library raises on purpose (bad input, wrong checkpoint) are
printed as one line naming the file and the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from hcrlc.errors import HcrlcError
from hcrlc.paper import MASK_PRESETS

_AUTHORS = MASK_PRESETS["authors"]


def _parser() -> argparse.ArgumentParser:
    from hcrlc.model_specs import MODEL_NAMES
    from hcrlc.paper import PATCH_SIZE
    from hcrlc.predict import PREDICT_DEFAULTS

    parser = argparse.ArgumentParser(
        prog="hcrlc", description="Haze & cloud removal and land-cover classification (Gu et al. 2022) on your "
        "own Sentinel-1/2 scenes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "predict", help="run a trained model on a scene: cloud_free.tif, cloud_mask.tif, landcover.tif, "
        "summary.json, quicklook.png",
        description="Run a trained best.pt on an S2 L1C scene (13 bands, uint16, projected CRS, >= one window) "
        "with S1 VV/VH in dB on any grid covering it; write Cloud-Optimized GeoTIFFs on the S2 grid into OUT (for "
        "a model trained on coarser pixels than the scene's, such as the demo's 40 m scale model: on a grid of the "
        "model's pixel size over it, the inputs averaged onto it).")
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

    i = sub.add_parser(
        "import-authors-checkpoint", help="turn a checkpoint of the authors' training script into a best.pt",
        description="Read a .pth saved by the authors' training script (Gu-ZQ/HCR-LC-Net: a dict with "
        "'model_state_dict', a bare state dict, 'module.' prefixes allowed) and write OUT/best.pt and "
        "OUT/model_card.json, which `hcrlc evaluate` and `hcrlc predict` read (and, with OUT = "
        "results/models/NETWORK, the workflow's evaluate_model and predict).")
    i.add_argument("--network", required=True, choices=MODEL_NAMES,
                   help="which of the five networks the file holds (hcr_lc_equal and hcr_lc_uncertain share their "
                   "layers: the choice names the loss it was trained with)")
    i.add_argument("--checkpoint", required=True,
                   help="the authors' file; for hcr_c_net the C-Net's (features.N, classifier.N)")
    i.add_argument("--hcr-checkpoint", default=None,
                   help="hcr_c_net only: the authors' file of the HCR-Net that feeds the C-Net")
    i.add_argument("--patch-size", type=int, default=PATCH_SIZE,
                   help="input patch size in px the network was trained on (default %(default)s, SEN12MS's)")
    i.add_argument("--out", required=True, help="output folder, e.g. results/models/NETWORK")

    e = sub.add_parser(
        "evaluate", help="score a best.pt on the test split of a workflow's data stage (Table 2 metrics)",
        description="Evaluate a best.pt on the test split that `snakemake data masks` prepared under RESULTS; "
        "write metrics.json, predictions.npz, examples.npz and (when a model_card.json lies beside the "
        "checkpoint) model_card.json with the test metrics into OUT.")
    e.add_argument("--checkpoint", required=True, help="a best.pt (trained, or imported with "
                   "import-authors-checkpoint)")
    e.add_argument("--results", default="results", help="the workflow's results folder holding data/index.parquet, "
                   "shards/ and masks/ (default %(default)s)")
    e.add_argument("--out", required=True, help="output folder, e.g. results/eval/NAME")
    e.add_argument("--name", default=None, help="run name recorded in the outputs (default: the checkpoint's model)")
    e.add_argument("--batch-size", type=int, default=16, help="test patches per forward pass (default %(default)s)")
    e.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    e.add_argument("--fig3-examples", type=int, default=4,
                   help="test patches whose reconstructions are kept in examples.npz (default %(default)s)")

    d = sub.add_parser("demo-scene", help="write a demo scene: real S2 L1C pixels (UTM) + synthetic S1 (lon/lat)",
                       description="Write s2_l1c.tif (s2cloudless's real L1C test pixels at a made-up UTM "
                       "position; pip downloads them once) and s1_db.tif (synthetic, EPSG:4326) into OUT.")
    d.add_argument("--out", required=True, help="output folder")
    return parser


def evaluate_checkpoint(checkpoint: str | Path, results_dir: str | Path, out_dir: str | Path, *,
                        run: str | None = None, batch_size: int = 16, device: str = "auto",
                        n_examples: int = 4) -> dict:
    """``hcrlc evaluate``: :func:`hcrlc.evaluation.evaluate_job` for a ``best.pt`` outside the workflow, on the
    data stage of a workflow run (``results_dir``: its ``results/`` folder, with ``data/index.parquet``,
    ``shards/`` and ``masks/``). ``run`` defaults to the checkpoint's model name. When a ``model_card.json`` lies
    beside the checkpoint, ``out_dir/model_card.json`` is that card with the test metrics, as the workflow's
    ``evaluated_model_card`` writes it. Returns the content of metrics.json.
    """
    from hcrlc.errors import DataError
    from hcrlc.evaluation import evaluate_job
    from hcrlc.model_card import with_test_metrics
    from hcrlc.training import load_checkpoint

    results_dir, checkpoint, out_dir = Path(results_dir), Path(checkpoint), Path(out_dir)
    for needed in ("shards", "masks"):
        if not (results_dir / needed).is_dir():
            raise DataError(results_dir / needed, "missing", "prepare the test data first: snakemake data masks "
                            f"(with the config of your data) in the folder that holds {results_dir}")
    run = run or load_checkpoint(checkpoint)["model_name"]
    metrics = evaluate_job(checkpoint, results_dir / "data" / "index.parquet", results_dir / "shards",
                           results_dir / "masks", out_dir, run=run, batch_size=batch_size, n_examples=n_examples,
                           device=device)
    card = checkpoint.with_name("model_card.json")
    if card.is_file():
        with_test_metrics(card, out_dir / "metrics.json", out_dir / "model_card.json")
    return metrics


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
        elif args.command == "import-authors-checkpoint":
            from hcrlc.authors_checkpoint import import_authors_checkpoint

            card = import_authors_checkpoint(args.network, args.checkpoint, args.out,
                                             hcr_source=args.hcr_checkpoint, patch_size=args.patch_size)
            print(f"{card['model']}: {card['parameters']} parameters, widths {card['model_config']['widths']} -> "
                  f"{args.out}/best.pt, {args.out}/model_card.json")
        elif args.command == "evaluate":
            metrics = evaluate_checkpoint(args.checkpoint, args.results, args.out, run=args.name,
                                          batch_size=args.batch_size, device=args.device,
                                          n_examples=args.fig3_examples)
            print(", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)) + f" -> {args.out}")
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
