"""The `./postane` script on a machine without a Python it can use (a stock Debian 12 has 3.11)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent


def test_without_python_3_12_it_says_what_to_install_and_stops(tmp_path: Path) -> None:
    python311 = shutil.which("python3.11", path="/usr/bin")
    dirname = shutil.which("dirname")
    if python311 is None or dirname is None:
        pytest.skip("needs Debian 12's /usr/bin/python3.11")
    tools = tmp_path / "bin"  # python3 is 3.11 and nothing newer is on PATH, as on a stock Debian 12
    tools.mkdir()
    (tools / "python3").symlink_to(python311)
    (tools / "dirname").symlink_to(dirname)
    venv = tmp_path / "venv"

    ran = subprocess.run(
        ["/bin/sh", "./postane", "pytest", "--version"],
        cwd=BASE_DIR,
        env={"PATH": str(tools), "HOME": str(tmp_path), "POSTANE_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert ran.returncode == 1, ran
    assert "Python 3.12 or newer" in ran.stderr
    assert "python3 here is 3.11" in ran.stderr
    assert "Debian 12" in ran.stderr
    assert "uv python install 3.12" in ran.stderr
    assert "Permission denied" not in ran.stderr  # what it said before: ./postane: 35: : Permission denied
    assert not venv.exists()
