from hcrlc.atomic import atomic_output
from hcrlc.data.layout import parse_scene_key
from hcrlc.data.synthetic import generate_trees
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    cfg = snakemake.params.cfg
    patches = generate_trees(
        snakemake.output.sen12ms,
        snakemake.output.sen12mscr,
        scenes=[parse_scene_key(s) for s in cfg["scenes"]],
        grid=cfg["grid"],
        patch_size=cfg["patch_size"],
        pixel_size_m=cfg["pixel_size_m"],
        seed=cfg["seed"],
        only_in_one_tree=cfg["only_in_one_tree"],
        truth_dir=snakemake.output.truth,
    )
    with atomic_output(snakemake.output.patches) as tmp:
        patches.to_csv(tmp, index=False)
