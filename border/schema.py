"""Where each package's numbered migrations live, in the order the layers are built.

Light on purpose: the command line reads it without loading the service (FastAPI, the
face model, FAISS)."""

from pathlib import Path

import audit
import border
import core
import enrollment
import visa


def migration_dirs() -> list[Path]:
    """Every package's migrations folder, in the order the layers are built."""
    packages = (core, audit, visa, enrollment, border)
    return [Path(pkg.__file__).parent / "migrations" for pkg in packages]  # type: ignore[arg-type]
