"""Train the pretext alone on a finished run's data with another model or schedule, and print its accuracy curve.

How the demo's pretext settings were chosen (docs/demo.md, "How the scale model was chosen"): the same
``pretext_job`` the workflow's ``pretext`` rule runs, on the shards, masks and index of a workdir that has run at
least ``snakemake data masks``, with the classification widths, batch size, learning rate, epochs and seed given
here. It prints one JSON line: the number of training anchors and validation pairs, the validation accuracy per
epoch, its best against chance (0.25), the training loss per epoch (ln 4 = 1.386 is chance) and the seconds taken.

    python benchmarks/pretext_probe.py /tmp/demo /tmp/probe --cls 32,32,32 --bs 32 --lr 1e-3 --epochs 60 --seed 0
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import torch

from hcrlc.selfsup import pretext_job

CHANCE = 0.25  # four directions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdir", help="a workdir whose results/ holds data/index.parquet, shards/ and masks/")
    parser.add_argument("out", help="folder for the probe's checkpoint and metrics (created)")
    parser.add_argument("--widths", default="8,16", help="model.widths, comma-separated (default: the demo's)")
    parser.add_argument("--cls", default="32,32,32", help="model.cls_widths, comma-separated (default: the demo's)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--bs", type=int, default=32, help="batch size")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-batchnorm", action="store_true", help="the authors' branch: no BatchNorm")
    parser.add_argument("--init", default="kaiming", choices=["kaiming", "default"], help="model.cls_init")
    args = parser.parse_args()

    torch.set_num_threads(1)  # as the demo's training jobs (resources.train.threads: 1)
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    results = f"{args.workdir}/results"
    model = {"widths": [int(v) for v in args.widths.split(",")], "cls_widths": [int(v) for v in args.cls.split(",")],
             "cls_batchnorm": not args.no_batchnorm, "cls_init": args.init}
    summary = pretext_job(f"{results}/data/index.parquet", f"{results}/shards", f"{results}/masks", args.out,
                          model_cfg=model, epochs=args.epochs, seed=args.seed,
                          train_cfg={"batch_size": args.bs, "lr": args.lr, "device": "cpu", "num_workers": 0})
    accuracy = [round(m["val_acc"], 3) for m in summary["metrics"]]
    print(json.dumps({"args": vars(args), "train_anchors": summary["n_train"], "val_pairs": summary["n_val"],
                      "best_val_acc": max(accuracy), "chance": CHANCE, "val_acc": accuracy,
                      "train_loss": [round(m["train_loss"], 3) for m in summary["metrics"]],
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
