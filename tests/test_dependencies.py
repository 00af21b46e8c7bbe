"""The declared dependencies: ranges a user's install can resolve, and the pins CI tests them with.

pyproject.toml gives each dependency a range (a tested lower bound, below the next major version);
constraints.txt pins the versions CI installs the wheel with (tests/packaging/check.py), for users who
want reproducible installs.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.test_architecture import imports_of

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [Requirement(line) for line in PROJECT["dependencies"]]
DEV_REQUIREMENTS = [Requirement(line) for line in PROJECT["optional-dependencies"]["dev"]]
OWN_PACKAGES = {"core", "adapters", "features", "bots"}


def pins() -> dict[str, Version]:
    """constraints.txt as {distribution: version}."""
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            found[canonicalize_name(name)] = Version(version)
    return found


def test_dependencies_are_ranges_not_exact_pins() -> None:
    for requirement in REQUIREMENTS + DEV_REQUIREMENTS:
        operators = {spec.operator for spec in requirement.specifier}
        assert not operators & {"==", "==="}, f"{requirement} is pinned: give a range"
        assert operators & {">=", ">", "~="}, f"{requirement} has no lower bound"
        assert operators & {"<", "~="}, f"{requirement} has no upper bound (the next major version)"


def test_constraints_pin_every_dependency_inside_its_range() -> None:
    pinned = pins()
    for requirement in REQUIREMENTS + DEV_REQUIREMENTS:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"constraints.txt does not pin {requirement.name}"
        assert pinned[name] in requirement.specifier, f"constraints.txt pins {name}=={pinned[name]}"
    assert "chatbot" not in pinned


def test_every_third_party_import_is_a_declared_dependency() -> None:
    declared = {canonicalize_name(r.name) for r in REQUIREMENTS}
    distributions = packages_distributions()
    undeclared = {}
    for package in sorted(OWN_PACKAGES):
        for module in set().union(*imports_of(package).values()):
            if module in sys.stdlib_module_names or module in OWN_PACKAGES or module == "__future__":
                continue
            names = {canonicalize_name(d) for d in distributions.get(module, [module])}
            if not names & declared:
                undeclared[module] = sorted(names)
    assert undeclared == {}, "imported by the package but not in [project] dependencies"
