"""The install files agree: environment.yml installs requirements.txt's pins (and names no other version),
requirements.txt pins every package the setup command installs, within pyproject.toml's ranges."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")
SETUP_EXTRAS = ("dev", "trl")   # the README's setup command: pip install -r requirements.txt -e ".[dev,trl]"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    """{package: version} of requirements.txt; every line that is not a comment must be an exact pin."""
    pins = {}
    for number, line in enumerate((ROOT / "requirements.txt").read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"requirements.txt line {number} is not an exact pin (name==version): {line!r}"
        name = canonical(match[1])
        assert name not in pins, f"requirements.txt pins {name} twice"
        pins[name] = match[2]
    return pins


def environment_entries() -> tuple[list[str], list[str]]:
    """(conda dependencies, pip entries) of environment.yml."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [entry for d in env["dependencies"] if isinstance(d, dict) for entry in d.get("pip", [])]
    return conda, pip


def test_environment_yml_installs_requirements_txt_and_pins_nothing_else_differently():
    pins = requirement_pins()
    conda, pip = environment_entries()
    assert "-r requirements.txt" in pip, "environment.yml must install the pins with `- -r requirements.txt` under pip"
    for entry in pip:
        if entry.startswith(("-r ", "-e ")):
            continue
        requirement = Requirement(entry)
        name = canonical(requirement.name)
        assert name in pins, f"environment.yml installs {entry!r}, which requirements.txt does not pin"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"environment.yml asks for {entry!r} but requirements.txt pins {name}=={pins[name]}"
    for entry in conda:   # conda's "name=1.2" means any 1.2.x; "name" alone pins nothing
        name, _, wanted = entry.partition("=")
        name = canonical(name.strip())
        wanted = wanted.lstrip("=").strip()
        if name in pins and wanted:
            assert pins[name] == wanted or pins[name].startswith(wanted + "."), \
                f"environment.yml's conda dependency {entry!r} disagrees with requirements.txt's {name}=={pins[name]}"


def test_requirements_txt_pins_everything_the_setup_command_installs_within_pyproject_ranges():
    pins = requirement_pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in SETUP_EXTRAS:
        declared += project["optional-dependencies"][extra]
    for text in declared:
        requirement = Requirement(text)
        name = canonical(requirement.name)
        assert name in pins, f"pyproject.toml needs {text!r} but requirements.txt does not pin {name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements.txt pins {name}=={pins[name]}, outside pyproject.toml's {text!r}"
    # torch is named in the same pip call as everything else (a bare torch pulls a CUDA build on CPU boxes)
    assert "torch" in pins


def test_every_report_to_tool_has_its_extra():
    from sar_lib.tracking import PACKAGES

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for tool, package in PACKAGES.items():
        if package is not None:
            assert [canonical(Requirement(r).name) for r in extras[tool]] == [package], tool
