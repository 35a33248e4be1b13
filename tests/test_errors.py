"""xcatd's errors are one family: every exception a module of xcatd defines
derives from XcatdError, which carries the lines a user reads, so the code
at a boundary catches that one class (xcatd/errors.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import xcatd
from xcatd.errors import XcatdError
from xcatd.store.objects import DefinitionError

# Signals that carry control inside one module, never shown to anyone as such.
CONTROL_FLOW = {
    "xcatd.boot.byteranges.Unsatisfiable",  # answered with HTTP 416
    "xcatd.boot.http._FormTooLarge",  # answered with HTTP 413
    "xcatd.commands.registry.HelpRequested",  # the help text, printed as output
    "xcatd.commands.tables._Answer",  # an answer found early
    "xcatd.store.noderange._TooMany",  # said as a NoderangeError naming the noderange
    "xcatd.store.regex_values._Problem",  # said as a RegexValueError naming the value
}


def _exception_classes() -> dict[str, type[BaseException]]:
    found = {}
    for module_info in pkgutil.walk_packages(xcatd.__path__, "xcatd."):
        if module_info.name == "xcatd.__main__":  # runs `xcatd` when imported
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_error_of_xcatd_is_an_xcatd_error():
    classes = _exception_classes()
    outside = sorted(
        name
        for name, cls in classes.items()
        if not issubclass(cls, XcatdError) and name not in CONTROL_FLOW
    )
    assert outside == []
    assert classes.keys() >= CONTROL_FLOW  # no stale entry


def test_an_error_says_its_lines_and_its_warnings():
    single = XcatdError("/install/rhels9 is not a directory")
    assert str(single) == "/install/rhels9 is not a directory"
    assert single.lines == ["/install/rhels9 is not a directory"]
    assert single.warnings == ()
    several = DefinitionError(
        ["Error: n1: no such group", "Error: n2: no such group"], warnings=["skipped n3"]
    )
    assert (
        several.lines
        == several.problems
        == ["Error: n1: no such group", "Error: n2: no such group"]
    )
    assert str(several) == "Error: n1: no such group\nError: n2: no such group"
    assert several.warnings == ["skipped n3"]
