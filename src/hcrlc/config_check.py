"""A short, actionable error for a config that breaks the closed schema (workflow/schemas/config.schema.yaml), or
whose patches do not fit its networks.

Snakemake's own ``validate`` reports a mistyped key by printing the whole schema and the whole config (~1000
lines) with the key near the top. :func:`check_config` runs the same JSON-schema check first and, when it fails,
raises a :class:`~hcrlc.errors.ConfigError` of a few lines: for each problem the key, the config file(s) that set
it, and for an unknown key the allowed keys at that level (and the nearest one, for a typo).

:func:`check_patch_geometry` (after ``validate`` filled in the defaults) refuses a patch size that the networks
of ``model`` cannot take, before any job runs, naming both keys and the files that set them.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from hcrlc.errors import ConfigError
from hcrlc.paper import PATCH_SIZE
from hcrlc.patch_geometry import check_patch_size

#: At most this many problems are listed; the rest are counted.
MAX_PROBLEMS = 10
#: Messages about a value are cut to this many characters (a wrong section would otherwise print whole).
MAX_MESSAGE = 200
#: where a key that no config file sets comes from, as far as the files tell
_NO_FILE = "--config on the command line (or a profile)"


def _where(path: Sequence[Any], config_files: Sequence[str | Path]) -> str:
    """The config files that set the key at ``path`` (or "--config on the command line" when none of them do)."""
    found = []
    for file in config_files:
        try:
            node: Any = yaml.safe_load(Path(file).read_text())
        except (OSError, yaml.YAMLError):
            continue
        for key in path:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            found.append(str(file))
    return ", ".join(found) if found else _NO_FILE


def _describe(error: jsonschema.ValidationError, config_files: Sequence[str | Path]) -> list[str]:
    path = list(error.absolute_path)
    at = ".".join(map(str, path)) or "the top level"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        lines = []
        for key in sorted(set(error.instance) - set(allowed), key=str):
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"unknown key {key!r} at {at}{hint}, set in {_where([*path, key], config_files)}; "
                         f"allowed keys there: {', '.join(allowed)}")
        return lines
    message = error.message if len(error.message) <= MAX_MESSAGE else error.message[:MAX_MESSAGE] + " ..."
    return [f"{at}: {message} (set in {_where(path, config_files)})"]


def check_config(config: dict, schema_path: str | Path, config_files: Sequence[str | Path] = ()) -> None:
    """Raise :class:`ConfigError` listing every violation of the schema at ``schema_path`` in a few lines.

    ``config_files``: the YAML files the config was merged from (Snakemake's ``workflow.configfiles``), searched
    to name the file that sets each offending key. Leaves ``config`` unchanged (filling in defaults is the job of
    ``snakemake.utils.validate``, called after this).
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    lines = [line for error in errors for line in _describe(error, config_files)]
    more = f"\n  ... and {len(lines) - MAX_PROBLEMS} more" if len(lines) > MAX_PROBLEMS else ""
    raise ConfigError(f"the config does not match {schema_path}:\n  " + "\n  ".join(lines[:MAX_PROBLEMS]) + more
                      + "\nFix: correct or remove these keys (each key's type and default are in the schema)")


def check_patch_geometry(config: dict, config_files: Sequence[str | Path] = ()) -> int:
    """The run's patch size in pixels, after checking that it fits every network of the config's ``model``.

    Real trees (``data.sen12ms`` / ``data.sen12mscr`` set) hold SEN12MS's 256 px patches (the shard jobs check
    every file); the synthetic tree is cut into ``synthetic.patch_size`` px patches. ``config`` must carry the
    schema's defaults (Snakemake's ``validate`` fills them in). Raises :class:`ConfigError` naming the size's key,
    the model keys and the files that set them.
    """
    real = config["data"]["sen12ms"] is not None or config["data"]["sen12mscr"] is not None
    if real:
        size, size_key = PATCH_SIZE, "data.sen12ms is set, and SEN12MS patches are 256 px"
        keys = [["data", "sen12ms"]]
    else:
        size, size_key = int(config["synthetic"]["patch_size"]), "synthetic.patch_size"
        keys = [["synthetic", "patch_size"]]
    try:
        check_patch_size(size, config["model"], size_key=size_key)
    except ConfigError as err:
        keys += [["model", key] for key in ("widths", "cls_widths", "cnet_layers")]
        where = "; ".join(f"{'.'.join(key)}: {_set_by(key, config_files)}" for key in keys)
        raise ConfigError(f"{err}\n  ({where})\nFix: change the patch size (synthetic data only) or the model "
                          "keys named above") from err
    return size


def _set_by(path: Sequence[str], config_files: Sequence[str | Path]) -> str:
    """"set in <files>" for a key some config file sets, else where its value comes from."""
    where = _where(path, config_files)
    return "the schema's default or --config" if where == _NO_FILE else f"set in {where}"
