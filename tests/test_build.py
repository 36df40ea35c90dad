"""Reproducible builds (DESIGN §15): constraints.txt pins every package at an exact version,
with no registry address; pyproject.toml carries the same pins for uv lock, sync and run
(which read no constraints file); the Dockerfile installs through the file
(tests/test_compose.py::TestDockerfile::test_every_install_goes_through_the_constraints)."""

import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
PIN = re.compile(r"(?P<name>[a-z0-9]+(?:[-_.][a-z0-9]+)*)==(?P<version>[0-9][0-9a-z.+!]*)")


def pins() -> dict[str, str]:
    """constraints.txt as {name: version}."""
    found = {}
    for line in CONSTRAINTS.read_text().splitlines():
        match = PIN.fullmatch(line)
        assert match is not None, f"not an exact pin: {line!r}"
        found[match["name"]] = match["version"]
    return found


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def declared() -> list[Requirement]:
    """The project's dependencies and its dev group's."""
    project = pyproject()
    lines = [*project["project"]["dependencies"], *project["dependency-groups"]["dev"]]
    return [Requirement(line) for line in lines]


class TestConstraints:
    def test_every_line_is_an_exact_pin_without_an_address(self) -> None:
        lines = CONSTRAINTS.read_text().splitlines()
        assert lines
        for line in lines:
            assert PIN.fullmatch(line), f"not name==version: {line!r}"
            # No URL, direct reference, option (--hash, --index-url), marker or comment.
            assert not [mark for mark in ("://", "@", "--", ";", "#") if mark in line], line

    def test_sorted_unique_and_without_the_project(self) -> None:
        names = [line.partition("==")[0] for line in CONSTRAINTS.read_text().splitlines()]
        assert names == sorted(names)
        assert len(set(names)) == len(names)
        assert all(name == canonicalize_name(name) for name in names)
        assert "border" not in names

    def test_pyproject_carries_the_same_pins(self) -> None:
        uv = pyproject()["tool"]["uv"]
        assert uv["constraint-dependencies"] == CONSTRAINTS.read_text().splitlines()
        assert uv["override-dependencies"] == ["dlib; sys_platform == 'never'"]
        assert not {"index", "index-url", "extra-index-url", "find-links"} & uv.keys()

    def test_every_declared_dependency_is_pinned_within_its_range(self) -> None:
        pinned = pins()
        for requirement in declared():
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{name} is not pinned in constraints.txt"
            assert requirement.specifier.contains(Version(pinned[name]), prereleases=True), (
                f"{name}=={pinned[name]} is outside pyproject's {requirement.specifier}"
            )

    def test_the_environment_is_the_pinned_one(self) -> None:
        """What the tests run on is what the image installs (uv run resolves through
        pyproject's pins)."""
        drift = {
            name: (version, metadata.version(name))
            for name, version in pins().items()
            if Version(metadata.version(name)) != Version(version)
        }
        assert drift == {}, "installed versions differ from constraints.txt: regenerate it"

    def test_the_lock_file_stays_out_of_git(self) -> None:
        assert "uv.lock" in (ROOT / ".gitignore").read_text().split()
