"""No module in `beds` is over 400 lines: past that, a module holds more than one concept and
is split by concept (as the engine packages under beds/adapters/ are), not by "utils"."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def oversized(package: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """Module path -> line count, for every module of the package over `limit` lines."""
    counts = {str(path.relative_to(package.parent)): len(path.read_text(encoding="utf-8").splitlines())
              for path in sorted(package.rglob("*.py"))}
    return {path: lines for path, lines in counts.items() if lines > limit}


def test_no_module_in_beds_is_over_400_lines() -> None:
    assert oversized(ROOT / "beds") == {}


def test_a_long_module_is_named_with_its_length(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "short.py").write_text("x = 1\n" * 400)
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * 401)
    assert oversized(tmp_path / "pkg") == {"pkg/long.py": 401}
