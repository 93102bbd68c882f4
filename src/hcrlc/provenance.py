"""Which library code a workflow job runs, as one hash: the `code` parameter of every rule.

Snakemake's code trigger sees a rule's own `script:` (by modification time) but not the modules that script
imports, so an edit to, say, the CARL loss in ``hcrlc/losses.py`` would otherwise leave every trained model in
place. Each rule therefore passes ``params.code = code_version(script)``: a hash over the source of the script and of
the ``hcrlc`` modules it imports, followed transitively through the package. A change to one of them changes the
parameter and Snakemake's params trigger reruns exactly the rules whose scripts reach that module (and, through
their outputs, everything downstream). Because the hash covers the script's content too, the workflow profile
(``profiles/default``) leaves out Snakemake's mtime-based code trigger: touching a file is not a change.

The hash is taken over the token stream, so comments, blank lines and the amount of whitespace between tokens do
not count; anything else (code, strings, docstrings) does. The import graph is read statically from the source
(``ast``), including imports inside functions; nothing is imported or executed. A module's companion files (same
stem, another suffix: ``data/fast_cloud.c`` beside ``data/fast_cloud.py``, the C kernel it compiles) count with it,
byte for byte.
"""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize
from functools import cache
from pathlib import Path

PACKAGE = "hcrlc"
#: the package's source folder (``src/hcrlc``)
PACKAGE_DIR = Path(__file__).resolve().parent

#: tokens that carry no meaning for the program
_IGNORED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING}


def normalized_source(path: Path) -> str:
    """The source of ``path`` as its meaningful tokens, one line per logical line (comments and layout dropped)."""
    return _normalized(path.read_bytes())


def _normalized(source: bytes) -> str:
    out = []
    for tok in tokenize.tokenize(io.BytesIO(source).readline):
        if tok.type in _IGNORED:
            continue
        if tok.type == tokenize.NEWLINE:
            out.append("\n")
        elif tok.type == tokenize.INDENT:
            out.append("<indent>")
        elif tok.type == tokenize.DEDENT:
            out.append("<dedent>")
        else:
            out.append(tok.string)
    return " ".join(out)


def _module_file(name: str, package_dir: Path) -> Path | None:
    """The file behind a dotted module name of the package, or None if ``name`` is not a module of it."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, package_dir: Path) -> str:
    rel = path.relative_to(package_dir).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _imported_names(path: Path, package_dir: Path, source: bytes) -> frozenset[str]:
    """Dotted names ``source`` (the content of ``path``) imports, with relative imports made absolute and
    ``from m import x`` giving m and m.x. Cached by content: every rule's ``code_of`` walks much the same modules."""
    tree = ast.parse(source, filename=str(path))
    inside = path.is_relative_to(package_dir)
    here = _module_name(path, package_dir).split(".") if inside else []
    if inside and path.name != "__init__.py":
        here = here[:-1]  # the package that holds the module
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not inside:
                    continue
                base = here[: len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _parents(name: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs every package ``__init__`` above it."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def library_files(*scripts: str | Path, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The package's source files that ``scripts`` import, directly or through other modules of the package, and
    those modules' companion files (same stem, e.g. ``fast_cloud.c``)."""
    seen: set[Path] = set()
    todo = [Path(s) for s in scripts]
    for script in todo:
        if not script.is_file():
            raise FileNotFoundError(f"{script}: no such script to follow imports from")
    while todo:
        path = todo.pop()
        for name in _imported_names(path, package_dir, path.read_bytes()):
            for module in _parents(name):
                found = _module_file(module, package_dir)
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append(found)
    companions = {c for p in seen for c in p.parent.glob(f"{p.stem}.*") if c.suffix not in (".py", ".pyc")}
    return sorted(seen | companions)


@cache
def _digest(source: bytes) -> str:
    """sha256 of the normalized source; cached by content, since rules share most modules."""
    return hashlib.sha256(_normalized(source).encode()).hexdigest()


def code_version(*scripts: str | Path, package_dir: Path = PACKAGE_DIR) -> str:
    """A short hash of the code ``scripts`` run: their own source and the library modules they reach (see the
    module docstring for what counts as a change). Independent of where the repository lies."""
    digest = hashlib.sha256()
    named = [(Path(s).name, Path(s)) for s in scripts]
    named += [(p.relative_to(package_dir).as_posix(), p) for p in library_files(*scripts, package_dir=package_dir)]
    for name, path in named:
        digest.update(name.encode() + b"\0")
        source = path.read_bytes()
        digest.update((_digest(source) if path.suffix == ".py" else hashlib.sha256(source).hexdigest()).encode())
    return digest.hexdigest()[:16]
