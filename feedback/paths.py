"""Where the templates, static files and migrations live, in a checkout and in a wheel."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def web_dir() -> Path:
    # A checkout (or editable install) has web/ beside the package; a wheel carries a copy
    # as feedback/_web (see setup.py).
    checkout = PACKAGE_DIR.parent / "web"
    if (checkout / "templates").is_dir():
        return checkout
    return PACKAGE_DIR / "_web"
