"""Paper-scale DAG: time and memory of `snakemake -n` on a tree with the real names and count of files.

Builds (once, under --tree) empty files for 122,218 triplets in the exact SEN12MS + SEN12MS-CR layout: 175
scenes over the four seasons, the SEN12MS hold-out scenes among them holding 12,666 patches and the others
109,549 (the paper's split sizes). Then times a dry run of the whole workflow with configs/paper.yaml and an
overlay pointing at that tree, and prints wall time, peak RSS of the snakemake process and jobs per rule.

    python benchmarks/dag_scale.py --tree /tmp/sen12ms_scale        # bar: <= 60 s and <= 2 GB RSS
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from hcrlc.data.layout import sen12ms_path, sen12mscr_path
from hcrlc.paper import HOLDOUT_SCENES, PAPER_N_TEST, PAPER_N_TRAINVAL, SEASONS

N_SCENES = 175  # SEN12MS-CR ROIs


def scene_plan() -> list[tuple[str, int, int]]:
    """(season, scene, n_patches): hold-out scenes share the test count, the rest the train+val count."""
    holdout = [(s, c) for s in SEASONS for c in sorted(HOLDOUT_SCENES[s])]
    others, c = [], 1
    while len(holdout) + len(others) < N_SCENES:
        for s in SEASONS:
            if c not in HOLDOUT_SCENES[s] and len(holdout) + len(others) < N_SCENES:
                others.append((s, c))
        c += 1
    plan = []
    for group, total in ((holdout, PAPER_N_TEST), (others, PAPER_N_TRAINVAL)):
        base, extra = divmod(total, len(group))
        plan += [(s, c, base + (i < extra)) for i, (s, c) in enumerate(group)]
    return plan


def build_tree(root: Path) -> int:
    done = root / ".complete"
    if done.exists():
        return int(done.read_text())
    n = 0
    for season, scene, count in scene_plan():
        for patch in range(count):
            for kind in ("s1", "s2", "lc"):
                p = sen12ms_path(root / "SEN12MS", kind, season, scene, patch)
                if patch == 0:
                    p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
            for kind in ("s1", "s2", "s2_cloudy"):
                p = sen12mscr_path(root / "SEN12MS-CR", kind, season, scene, patch)
                if patch == 0:
                    p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
            n += 1
    # SEN12MS-CR has 122,218 triplets; 3 of them have no SEN12MS counterpart (excluded by the listing)
    season, scene, count = scene_plan()[-1]
    for patch in range(count, count + 3):
        for kind in ("s1", "s2", "s2_cloudy"):
            sen12mscr_path(root / "SEN12MS-CR", kind, season, scene, patch).touch()
        n += 1
    done.write_text(str(n))
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=Path("/tmp/sen12ms_scale"))
    ap.add_argument("--workdir", type=Path, default=None, help="snakemake workdir (default: <tree>/work)")
    ap.add_argument("--listing", action="store_true", help="also time the listing job's work (walk + intersect)")
    args = ap.parse_args()
    t = time.perf_counter()
    n = build_tree(args.tree)
    print(f"tree: {n} SEN12MS-CR triplets, {6 * n - 9} empty files under {args.tree} ({time.perf_counter() - t:.1f} s to build)")

    work = args.workdir or args.tree / "work"
    work.mkdir(parents=True, exist_ok=True)
    overlay = work / "paths.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"sen12ms": str(args.tree / "SEN12MS"),
                                                "sen12mscr": str(args.tree / "SEN12MS-CR")}}))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work), "-n", "--quiet",
           "rules", "--configfile", str(REPO / "configs" / "paper.yaml"), str(overlay)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode:
        sys.exit(f"dry run failed:\n{proc.stdout}\n{proc.stderr}")
    print((proc.stdout + proc.stderr).split("Job stats:")[-1].split("Reasons:")[0].rstrip())
    print(f"dry run of the paper-scale DAG: {wall:.1f} s wall, peak RSS {rss_mb:.0f} MB "
          f"(bar: <= 60 s, <= 2048 MB) -> {'PASS' if wall <= 60 and rss_mb <= 2048 else 'FAIL'}")
    if args.listing:
        from hcrlc.data.index import build_listing

        t = time.perf_counter()
        listing, excluded = build_listing(args.tree / "SEN12MS", args.tree / "SEN12MS-CR")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"listing job work: {len(listing)} triplets in both trees, {len(excluded)} excluded, "
              f"{time.perf_counter() - t:.1f} s, peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
