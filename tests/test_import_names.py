"""Our import names are ours alone: no installed distribution ships a top-level module that one of our
packages, benchmark scripts or test modules would shadow (or be shadowed by).

Our Triton package was once called ``kernels``, the name of Hugging Face's kernel hub, which
transformers ≥ 5 imports: with the repository root first on the path, transformers' and diffusers'
loaders failed as eight unrelated test failures. These tests name the clash instead.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"lit-genvision", "lit_genvision"}


def our_top_level_names() -> dict[str, str]:
    """Every name our tree puts at the top level of ``sys.path`` when run: the packages at the repository
    root, the scripts of ``benchmarks/`` (a script's folder comes first on the path), and the modules and
    packages directly under ``tests/`` (pytest prepends the folder of a conftest without ``__init__``)."""
    names = {p.name: str(p.relative_to(ROOT)) for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    for folder in (ROOT / "benchmarks", ROOT / "tests"):
        names |= {p.stem: str(p.relative_to(ROOT)) for p in folder.glob("*.py")}
        names |= {p.name: str(p.relative_to(ROOT)) for p in folder.iterdir() if (p / "__init__.py").is_file()}
    return names


def test_no_installed_distribution_ships_one_of_our_top_level_names():
    installed = importlib.metadata.packages_distributions()
    clashes = {
        name: (where, sorted(set(installed[name]) - OURS))
        for name, where in our_top_level_names().items()
        if set(installed.get(name, ())) - OURS
    }
    assert not clashes, "; ".join(
        f"{where} is importable as {name!r}, which the installed distribution(s) {', '.join(dists)} also ship — "
        "rename ours"
        for name, (where, dists) in sorted(clashes.items())
    )


def test_our_kernel_package_is_the_one_in_this_tree():
    import genvision_kernels

    assert Path(genvision_kernels.__file__).resolve().parent == ROOT / "genvision_kernels"


@pytest.mark.parametrize(
    ("module", "name"),
    [("transformers.integrations.hub_kernels", None), ("diffusers", "UNet2DModel"), ("transformers", "AutoModel")],
)
def test_hugging_face_loaders_import_beside_our_packages(module, name):
    try:
        imported = importlib.import_module(module)
        if name is not None:
            getattr(imported, name)
    except ImportError as err:
        pytest.fail(
            f"importing {module}{'.' + name if name else ''} failed ({err}); a top-level name of ours probably "
            f"shadows one of its dependencies: see test_no_installed_distribution_ships_one_of_our_top_level_names."
        )
