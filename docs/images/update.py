"""Copy the README's figures from a finished run into ``docs/images/``, downscaled to small PNGs.

    python docs/images/update.py <workdir>          # the -d of the run; its results/figures/ holds the figures

Takes ``results/figures/{fig1,fig3,fig4,curves}.png`` of that run, so the README shows what the code of that run
made. Each is flattened onto white, scaled down to at most ``--max-width`` pixels (never up), reduced to a
256-colour palette and written atomically; nothing is written unless all four are there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from hcrlc.atomic import atomic_output
from hcrlc.errors import DataError, HcrlcError

#: the figures the README shows, by file stem under results/figures/
FIGURES = ("fig1", "fig3", "fig4", "curves")
#: wide enough to read the tick labels of the widest figure on a 2x screen at GitHub's ~830-px column
MAX_WIDTH = 1400
HERE = Path(__file__).resolve().parent


def small_png(source: Path, max_width: int = MAX_WIDTH) -> Image.Image:
    """The figure at ``source`` as a palette image at most ``max_width`` pixels wide (aspect kept)."""
    with Image.open(source) as opened:
        rgba = opened.convert("RGBA")
    image = Image.new("RGB", rgba.size, "white")
    image.paste(rgba, mask=rgba.getchannel("A"))
    if image.width > max_width:
        height = max(1, round(image.height * max_width / image.width))
        image = image.resize((max_width, height), Image.Resampling.LANCZOS)
    return image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)


def update_images(workdir: str | Path, out: str | Path = HERE, max_width: int = MAX_WIDTH) -> list[Path]:
    """Write ``out/{name}.png`` for every figure of :data:`FIGURES` from ``workdir/results/figures``."""
    figures = Path(workdir) / "results" / "figures"
    sources = [figures / f"{name}.png" for name in FIGURES]
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise DataError(figures, f"missing {', '.join(missing)}",
                        f"finish the run first (`snakemake -d {workdir} figures` with that run's options), or "
                        "name the workdir that holds it")
    written = []
    for source in sources:
        image = small_png(source, max_width)
        target = Path(out) / source.name
        with atomic_output(target) as tmp:
            image.save(tmp, format="PNG", optimize=True)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", help="working directory (-d) of a finished run")
    parser.add_argument("--out", default=str(HERE), help="where the PNGs go (default: docs/images/)")
    parser.add_argument("--max-width", type=int, default=MAX_WIDTH, help="pixels (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        written = update_images(args.workdir, args.out, args.max_width)
    except HcrlcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        with Image.open(path) as image:
            print(f"{path}: {image.width} x {image.height} px, {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
