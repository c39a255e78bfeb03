"""`pip install .` must carry the templates, static files and migrations, not just code."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_web_files_and_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("feedback-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = [
        n for n in names if n.startswith("feedback/migrations/versions/") and n.endswith(".py")
    ]
    assert migrations, "no migration scripts in the wheel"
    for required in [
        "feedback/migrations/env.py",
        "feedback/migrations/script.py.mako",
        "feedback/_web/templates/base.html",
        "feedback/_web/templates/email/invitation.txt",
        "feedback/_web/static/vendor/pico.min.css",
        "feedback/_web/static/live.js",
    ]:
        assert required in names, f"{required} missing from the wheel"
    # Every template and static file in the checkout ships.
    for path in (ROOT / "web").rglob("*"):
        if path.is_file():
            assert f"feedback/_web/{path.relative_to(ROOT / 'web')}" in names
