"""Every key of the closed config schema takes effect: changing it changes a job of the workflow.

For each leaf key of ``workflow/schemas/config.schema.yaml`` the smoke config is overlaid with another valid value
and Snakemake builds the DAG in-process; the observable is a job's parameters (less ``config_hash``, which hashes
the whole config), threads, resources, inputs or outputs, or the set of jobs. :data:`OBSERVABLE` names, per key,
the rule whose jobs must change; a schema key missing from it fails the test, so a new key needs an effect.
Keys the jobs receive inside a dict (``train_cfg``, ``model_cfg``, ``ssl``, ``masks``, ``cfg``) are passed only
when the library reads them (``pretext_training_config``/``ssl_training_config`` in workflow/rules/common.smk).
"""

from __future__ import annotations

import contextlib
import copy
import io
from functools import cache
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SMOKE

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TRAINING_KEYS = ["epochs", "batch_size", "lr", "weight_decay", "device", "deterministic", "num_workers", "compile",
                 "precision", "max_train_samples", "gpus"]
RESOURCE_KEYS = ["mem_mb", "runtime", "threads", "gpus"]

#: schema key -> the rule whose jobs change with it (with the target it is seen through when not `all`)
OBSERVABLE: dict[str, str] = {
    "data.sen12ms": "listing", "data.sen12mscr": "listing", "data.labels": "index",
    **{f"download.{k}": "download" for k in ("dir", "archives", "extract", "keep_archives", "timeout", "retries",
                                             "runtime")},
    "synthetic.seed": "synthetic_tree", "synthetic.grid": "synthetic_tree", "synthetic.scenes": "synthetic_tree",
    "synthetic.only_in_one_tree": "synthetic_tree", "synthetic.patch_size": "synthetic_tree",
    "synthetic.pixel_size_m": "synthetic_tree",
    "split.seed": "index", "split.val_fraction": "index", "split.val_mode": "index",
    "labels.threshold": "index",
    "shards.compression": "shards",
    "masks.engine": "cloud_masks", "masks.threshold": "cloud_masks", "masks.average_over": "cloud_masks",
    "masks.dilation_size": "cloud_masks", "masks.max_nodata_fraction": "index",
    **{f"model.{k}": "train_model" for k in ("widths", "cls_widths", "cnet_layers", "cnet_hidden", "cnet_dropout",
                                                      "recon_head_init", "cls_batchnorm", "cls_init")},
    **{f"training.{k}": "train_model" for k in TRAINING_KEYS},
    **{f"models.{m}.{k}": "train_model" for m in ("lc_net", "hcr_net", "hcr_lc_equal", "hcr_lc_uncertain",
                                                   "hcr_c_net") for k in TRAINING_KEYS},
    **{f"models.pretext.{k}": "pretext" for k in TRAINING_KEYS if k not in ("epochs", "gpus")},
    **{f"models.ssl.{k}": "ssl_run" for k in TRAINING_KEYS if k != "gpus"},
    "ssl.pretext_epochs": "pretext", "ssl.frozen_epochs": "ssl_run", "ssl.finetune_epochs": "ssl_run",
    "ssl.scratch_epochs": "ssl_run", "ssl.label_fractions": "ssl_run", "ssl.seed": "ssl_run",
    "evaluate.batch_size": "evaluate_model", "evaluate.fig1_bins": "fig1", "evaluate.fig1_subgroups": "fig1",
    "evaluate.fig1_error_bars": "fig1", "evaluate.fig3_examples": "evaluate_model",
    "evaluate.bootstrap": "claims", "evaluate.bootstrap_seed": "claims",
    **{f"predict.{k}": "predict_scene" for k in ("model", "scenes", "overlap", "batch_size", "device")},
    "seeds": "train_model",
    **{f"resources.light.{k}": "index" for k in RESOURCE_KEYS},
    **{f"resources.masks.{k}": "cloud_masks" for k in RESOURCE_KEYS},
    **{f"resources.shards.{k}": "shards" for k in RESOURCE_KEYS},
    **{f"resources.train.{k}": "train_model" for k in RESOURCE_KEYS},
    **{f"resources.evaluate.{k}": "evaluate_model" for k in RESOURCE_KEYS},
    **{f"resources.predict.{k}": "predict_scene" for k in RESOURCE_KEYS},
}
#: other values than the generic ones (:func:`other_value`)
VALUES = {
    "data.labels": "IGBP_probability_labels.pkl",
    "download.archives": [{"url": "https://example.org/ROIs1158_spring.tar.gz", "dataset": "sen12ms"}],
    "synthetic.scenes": ["spring_15", "spring_1"], "synthetic.patch_size": 128,
    "model.widths": [4, 8], "model.cls_widths": [8, 8], "model.cnet_layers": [4, "M"], "model.cnet_hidden": [8],
    "ssl.label_fractions": [25], "seeds": [0, 1],
    "predict.model": "hcr_net",
    "predict.scenes": {"other": {"s2": "results/predict_demo/s2_l1c.tif", "s1": "results/predict_demo/s1_db.tif"}},
}


def schema_keys() -> list[str]:
    """Dotted leaf keys of the schema; objects with fixed properties are walked, through `$ref`s."""
    schema = yaml.safe_load(SCHEMA.read_text())

    def walk(node: dict, prefix: str) -> list[str]:
        if "$ref" in node:
            node = {**schema["definitions"][node["$ref"].rsplit("/", 1)[1]], **node}
        if node.get("type") == "object" and "properties" in node:
            forbidden = node.get("propertyNames", {}).get("not", {}).get("enum", [])  # e.g. models.pretext.epochs
            return [k for name, sub in node["properties"].items() if name not in forbidden
                    for k in walk(sub, f"{prefix}{name}.")]
        return [prefix.rstrip(".")]

    return walk(schema, "")


def get(config: dict, key: str):
    for part in key.split("."):
        config = (config or {}).get(part)
    return config


def other_value(key: str, value, spec: dict):
    """A valid value other than ``value`` for the schema entry ``spec``."""
    if key in VALUES:
        return VALUES[key]
    if "enum" in spec:
        return next(v for v in spec["enum"] if v != value)
    types = spec.get("type")
    types = types if isinstance(types, list) else [types]
    if value is None:
        return 2 if "integer" in types else 0.3
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1 if value + 1 <= spec.get("maximum", value + 1) else value - 1
    if isinstance(value, float):
        return value / 2 if value else 0.25
    if isinstance(value, str):
        return value + "_other"
    raise AssertionError(f"{key}: no other value for {value!r}; add one to VALUES")


def leaf_spec(key: str) -> dict:
    schema = yaml.safe_load(SCHEMA.read_text())
    node = schema
    for part in key.split("."):
        if "$ref" in node:
            node = {**schema["definitions"][node["$ref"].rsplit("/", 1)[1]], **node}
        node = node["properties"][part]
    return node


def nested(key: str, value) -> dict:
    out: dict = {}
    cur = out
    parts = key.split(".")
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
    return out


def merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def jobs_of(overlay: dict, targets: tuple[str, ...], workdir: Path) -> tuple[dict, dict]:
    """Job -> (params less config_hash, threads, resources, inputs, outputs) of the DAG of ``targets``, and the
    config Snakemake ended up with."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    with contextlib.redirect_stderr(io.StringIO()), SnakemakeApi(OutputSettings()) as api:
        # more cores than any job asks for, so that a job's `threads` is not capped and a change shows
        wf = api.workflow(resource_settings=ResourceSettings(cores=64),
                          config_settings=ConfigSettings(configfiles=[SMOKE], config=overlay),
                          snakefile=REPO / "Snakefile", workdir=workdir)
        dag_api = wf.dag(DAGSettings(targets=set(targets), forceall=True))
        workflow = dag_api.workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        jobs = {}
        for job in workflow.dag.jobs:
            params = {k: v for k, v in job.params.items() if k != "config_hash"}
            resources = {k: v for k, v in job.resources.items() if not k.startswith("_")}
            jobs[(job.rule.name, str(sorted(job.wildcards_dict.items())))] = repr(
                (params, job.threads, resources, sorted(map(str, job.input)), sorted(map(str, job.output))))
        return jobs, copy.deepcopy(dict(workflow.config))


def target_of(key: str) -> tuple[str, ...]:
    if key.startswith("download."):
        return ("download",)
    if key.startswith(("predict.", "resources.predict.")):
        return ("predict",)
    return ("all",)


def base_overlay(key: str, tmp: Path) -> dict:
    if key == "models.ssl.epochs":  # it counts for the ssl_off runs only when ssl.scratch_epochs is null
        return {"ssl": {"scratch_epochs": None}}
    if key.startswith(("predict.", "resources.predict.")):
        return yaml.safe_load((REPO / "configs" / "predict_demo.yaml").read_text())
    return {}


@cache
def _base(targets: tuple[str, ...], overlay_yaml: str, workdir: str) -> tuple[dict, dict]:
    return jobs_of(yaml.safe_load(overlay_yaml), targets, Path(workdir))


def changed_rules(key: str, tmp: Path, workdir: Path) -> set[str]:
    base = base_overlay(key, tmp)
    targets = target_of(key)
    before, config = _base(targets, yaml.safe_dump(base), str(workdir))
    if key in ("data.sen12ms", "data.sen12mscr"):  # set together (common.smk): real trees instead of synthetic
        change = {"data": {"sen12ms": str(tmp / "SEN12MS"), "sen12mscr": str(tmp / "SEN12MS-CR")}}
        (tmp / "SEN12MS").mkdir(exist_ok=True)
        (tmp / "SEN12MS-CR").mkdir(exist_ok=True)
    elif key == "data.labels":
        (tmp / VALUES[key]).write_bytes(b"")
        change = nested(key, str(tmp / VALUES[key]))
    else:
        value = get(config, key)
        if value is None and key.startswith("models."):  # not overridden: the model inherits `training`'s value
            value = get(config, "training." + key.rsplit(".", 1)[1])
        change = nested(key, other_value(key, value, leaf_spec(key)))
    after, _ = jobs_of(merge(base, change), targets, workdir)
    return {job[0] for job in set(before) | set(after) if before.get(job) != after.get(job)}


def test_every_schema_key_has_an_observable():
    assert sorted(set(schema_keys()) - set(OBSERVABLE)) == [], "schema keys without an effect listed in OBSERVABLE"
    assert sorted(set(OBSERVABLE) - set(schema_keys())) == [], "OBSERVABLE lists keys the schema no longer has"


def test_dead_keys_are_gone():
    keys = set(schema_keys())
    assert not {"training.seed", "models.lc_net.seed", "models.pretext.epochs", "models.pretext.gpus",
                "models.ssl.gpus"} & keys


@pytest.mark.slow
def test_every_schema_key_changes_its_observable(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    missing = {}
    for key in sorted(OBSERVABLE):
        changed = changed_rules(key, tmp_path, workdir)
        if OBSERVABLE[key] not in changed:
            missing[key] = sorted(changed)
    assert missing == {}, f"keys whose change leaves their rule's jobs unchanged (changed instead): {missing}"

