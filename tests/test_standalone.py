"""The repository stands on its own (DESIGN §15): a clone with no ``../shared`` beside it
runs the demo on the photos it carries. CI's own clone has ``../shared`` beside it, so this
test makes a clone where there is none."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to clone the repository")
def test_a_clone_without_shared_beside_it_runs_the_demo(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "alone" / "border"
    subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", f"file://{ROOT}", str(clone)],
        check=True,
        timeout=120,
    )
    assert not (clone.parent.parent / "shared").exists()
    assert not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BORDER_")}
    # The clone's own code first: its demo finds the photos beside itself.
    env["PYTHONPATH"] = str(clone)
    done = subprocess.run(
        [sys.executable, "-m", "border", "demo", "--data-dir", str(tmp_path / "demo")],
        cwd=clone, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    assert "audit chain holds" in done.stdout
    assert str(clone) in subprocess.run(
        [sys.executable, "-c", "import border.demo as d; print(d.default_faces())"],
        cwd=clone, env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
