"""The embedded interpreter's options (the `python` config section)."""

import httpx
import pytest

from conftest import SANITIZED

DOC = "A docstring that -OO drops."


@pytest.mark.parametrize(
    "level, expected",
    [
        (None, {"optimize": 0, "debug": True, "asserts": True, "doc": DOC}),
        (0, {"optimize": 0, "debug": True, "asserts": True, "doc": DOC}),
        (1, {"optimize": 1, "debug": False, "asserts": False, "doc": DOC}),
        (2, {"optimize": 2, "debug": False, "asserts": False, "doc": None}),
    ],
)
def test_python_optimize_is_the_apps_optimisation_level(serve, level, expected):
    if SANITIZED and level:
        # -O/-OO make the interpreter compile the standard library's modules
        # anew at that level (its .opt-N.pyc): under ASan on a loaded machine
        # that alone outlasts the start timeout. The level is one PyConfig
        # field; levels 0 and None still run here, 1 and 2 in the plain runs.
        pytest.skip("-O/-OO recompile the standard library: too slow under sanitizers")
    sections = {} if level is None else {"python": {"optimize": level}}
    server = serve("optimize_app:app", **sections)
    assert httpx.get(server.url + "/", timeout=10).json() == expected
