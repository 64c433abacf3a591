"""The type stubs match the native module, and the package type-checks."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_native_stubs_match_the_runtime_module() -> None:
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ratewall._native"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_ships_py_typed_and_stubs() -> None:
    from importlib import resources

    files = {p.name for p in resources.files("ratewall").iterdir()}
    assert {"py.typed", "_native.pyi"} <= files
