"""The docs site builds strictly, and the strict build is what catches a broken link.

`make test` builds the real site (`make docs`) before pytest; this test proves the settings in
mkdocs.yml make a broken link, a missing anchor or a broken generated block fail that build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).parent / "mkdocs"

pytestmark = [pytest.mark.skipif(not MKDOCS.exists(), reason="mkdocs not installed (extra docs)"),
              pytest.mark.slow]   # a real mkdocs build per test: seconds each


def _copy_project(tmp_path: Path) -> Path:
    """What the build reads: mkdocs.yml, docs/, README.md, config/, templates/."""
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("docs", "config", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("api", "__pycache__"))
    return tmp_path


def _build(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([str(MKDOCS), "build", "--strict", "-d", str(project / "site")],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)


def test_the_site_builds_strictly_with_the_generated_reference(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    result = _build(project)
    assert result.returncode == 0, result.stderr
    config_page = (project / "site/reference/config.html").read_text()
    assert "statement_timeout" in config_page and "beds:generated" not in config_page
    assert "beds templates check" in (project / "site/reference/cli.html").read_text()


@pytest.mark.parametrize(("link", "complaint"), [
    ("[gone](howto/no-such-page.md)", "no-such-page.md"),
    ("[gone](reference/config.md#no-such-key)", "does not contain an anchor '#no-such-key'"),
    ("<!-- beds:generated no-such-block -->", "no generated block 'no-such-block'"),
])
def test_a_broken_link_fails_the_build(tmp_path: Path, link: str, complaint: str) -> None:
    project = _copy_project(tmp_path)
    index = project / "docs/index.md"
    index.write_text(index.read_text() + f"\n{link}\n")
    result = _build(project)
    assert result.returncode != 0
    assert complaint in result.stderr + result.stdout
