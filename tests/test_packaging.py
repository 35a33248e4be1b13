"""Each command is defined once, in the daemon; the client's console scripts
must name exactly those commands."""

import tomllib
from pathlib import Path

from xcatd.commands import REGISTRY

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_every_registered_command_has_a_console_script_and_no_more():
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    client_commands = {
        name for name, target in scripts.items() if target == "xcat_client.main:main"
    }
    assert client_commands == set(REGISTRY)
    assert scripts["xcatd"] == "xcatd.cli:main"


def test_the_client_never_imports_trio_or_the_daemon():
    import subprocess
    import sys

    probe = (
        "import sys, xcat_client.main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('trio', 'xcatd')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def test_every_shipped_data_file_and_package_goes_into_the_wheel():
    """A regular install has only what pyproject.toml names: the package data
    globs must cover every file of xcatd that is not Python (xcatd/share, the
    tables' JSON, ...), the package list every directory with Python in it."""
    setuptools = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]
    package = PYPROJECT.parent / "xcatd"
    patterns = setuptools["package-data"]["xcatd"]
    covered = {path for pattern in patterns for path in package.glob(pattern)}
    data = {
        path for path in package.rglob("*") if path.is_file() and path.suffix not in (".py", ".pyc")
    }
    assert data - covered == set()
    packages = {
        ".".join(("xcatd", *init.parent.relative_to(package).parts))
        for init in package.rglob("__init__.py")
    }
    assert packages - set(setuptools["packages"]) == set()
