"""The `code` parameter of every rule: which library files a script reaches, and what counts as a change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO
from hcrlc.provenance import PACKAGE_DIR, code_version, library_files, normalized_source


@pytest.fixture
def package(tmp_path) -> tuple[Path, Path]:
    """A small ``hcrlc`` package and a script that uses part of it."""
    pkg = tmp_path / "src" / "hcrlc"
    (pkg / "models").mkdir(parents=True)
    files = {
        "__init__.py": '"""pkg"""\n',
        "losses.py": "import torch\n\ndef carl(a, b):\n    return (a - b).abs().mean()\n",
        "training.py": "from hcrlc.losses import carl\nfrom . import helpers\n",
        "helpers.py": "def lazy():\n    from hcrlc.models import unet  # imported inside a function\n    return unet\n",
        "models/__init__.py": "",
        "models/unet.py": "from ..losses import carl\n",
        "figures.py": "import matplotlib\n",
        "unused.py": "X = 1\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    script = tmp_path / "train.py"
    script.write_text("from hcrlc import training\n")
    return pkg, script


def names(paths, pkg):
    return {p.relative_to(pkg).as_posix() for p in paths}


def test_library_files_follow_imports_transitively(package):
    pkg, script = package
    found = names(library_files(script, package_dir=pkg), pkg)
    # absolute, relative (`from . import`, `from ..losses`), in-function imports and the package __init__ files
    assert found == {"__init__.py", "training.py", "losses.py", "helpers.py", "models/__init__.py", "models/unet.py"}


def test_code_version_changes_with_imported_code_only(package):
    pkg, script = package
    before = code_version(script, package_dir=pkg)
    assert code_version(script, package_dir=pkg) == before  # deterministic

    (pkg / "unused.py").write_text("X = 2\n")
    (pkg / "figures.py").write_text("import numpy\n")
    assert code_version(script, package_dir=pkg) == before

    unet = pkg / "models" / "unet.py"
    unet.write_text(unet.read_text() + "WIDTH = 64\n")
    assert code_version(script, package_dir=pkg) != before


def test_a_modules_companion_file_counts_with_it(package):
    """fast_cloud.py compiles fast_cloud.c beside it: an edit to the C kernel must rerun the masks."""
    pkg, script = package
    kernel = pkg / "losses.c"
    kernel.write_text("int abi(void) { return 1; }\n")
    (pkg / "unused.c").write_text("int x;\n")
    assert "losses.c" in names(library_files(script, package_dir=pkg), pkg)
    assert "unused.c" not in names(library_files(script, package_dir=pkg), pkg)
    before = code_version(script, package_dir=pkg)
    kernel.write_text("int abi(void) { return 2; }\n")
    assert code_version(script, package_dir=pkg) != before


def test_the_cloud_mask_rule_reaches_the_c_kernel():
    script = REPO / "workflow" / "scripts" / "cloud_masks.py"
    assert "data/fast_cloud.c" in names(library_files(script), PACKAGE_DIR)


def test_comments_blank_lines_and_spacing_do_not_count_but_strings_do(package):
    pkg, script = package
    losses = pkg / "losses.py"
    before = code_version(script, package_dir=pkg)
    losses.write_text("import torch\n\n\n# the CARL loss\ndef carl(a,b):  # eq. 1\n    return (a-b).abs().mean()\n")
    assert code_version(script, package_dir=pkg) == before
    losses.write_text("import torch\n\ndef carl(a, b):\n    return (a - b).abs().sum()\n")
    assert code_version(script, package_dir=pkg) != before
    losses.write_text('import torch\n\ndef carl(a, b):\n    "doc"\n    return (a - b).abs().mean()\n')
    assert code_version(script, package_dir=pkg) != before


def test_indentation_is_code(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("if x:\n    y()\nz()\n")
    b.write_text("if x:\n    y()\n    z()\n")
    assert normalized_source(a) != normalized_source(b)


def test_script_itself_counts_and_missing_script_is_named(package, tmp_path):
    pkg, script = package
    before = code_version(script, package_dir=pkg)
    script.write_text("from hcrlc import training\nprint(training)\n")
    assert code_version(script, package_dir=pkg) != before
    with pytest.raises(FileNotFoundError, match="nope.py"):
        code_version(tmp_path / "nope.py", package_dir=pkg)


def test_every_script_rule_passes_the_code_of_its_script():
    """A rule without `code=code_of(<its script>)` would miss library edits: check every rule file."""
    checked = 0
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule |checkpoint )", smk.read_text()):
            script = re.search(r'script:\n\s+"\.\./scripts/([\w.]+)"', block)
            if script is None:
                continue
            code = re.search(r"code=code_of\(([^)]*)\)", block)
            assert code is not None, f"{smk.name}: {block.splitlines()[0]} has no code=code_of(...) parameter"
            assert f'"{script.group(1)}"' in code.group(1), f"{smk.name}: {block.splitlines()[0]}"
            checked += 1
    assert checked >= 15


def test_training_rule_reaches_the_loss_and_table1_does_not():
    scripts = REPO / "workflow" / "scripts"
    train = names(library_files(scripts / "train.py", scripts / "train_ddp.py"), PACKAGE_DIR)
    table1 = names(library_files(scripts / "table1.py"), PACKAGE_DIR)
    assert {"losses.py", "training/loop.py", "models/unet.py", "data/dataset.py"} <= train
    assert "losses.py" not in table1 and "models/unet.py" in table1
