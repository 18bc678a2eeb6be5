"""Dependencies between the top-level packages point one way only.

protocols uses instruments; sim_backend implements what instruments talk to; fitting reads
results files; stpn reads only the exported device file; nothing imports memsyn.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("instruments", "protocols", "fitting", "sim_backend", "stpn", "memsyn")

# Package -> project packages it may import.
ALLOWED = {
    "instruments": set(),
    "sim_backend": {"instruments"},
    "protocols": {"instruments"},
    "fitting": set(),
    "stpn": set(),
    "memsyn": {"instruments", "protocols", "fitting", "sim_backend", "stpn"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_allowed(package):
    allowed = ALLOWED[package] | {package}
    offenders = []
    for path in sorted((REPO / package).rglob("*.py")):
        for name in sorted(imported_packages(path) - allowed):
            offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []
