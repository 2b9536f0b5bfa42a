"""`beds scaffold`: a spec in, files for the DBA to review out. Never touches a database.

Layer: tooling (scaffold CLI glue). Writes `schema/<engine>/NNN_<name>.sql` (`.json` for MongoDB and
DynamoDB; numbered after the files already there, or the number this domain already has),
`templates/<name>.toml` and `docs/templates/<name>.md` under the project (or `--out DIR`). A
file that exists with other content is not overwritten without --force; nothing is written
unless every file may be.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from pathlib import Path

from beds.errors import ConfigError
from beds.scaffold.engines import Existing

SCHEMA_FILE_RE = re.compile(r"(\d{3})_([A-Za-z0-9_]+)\.[A-Za-z0-9]+")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("scaffold", parents=[common],
                       help="generate schema, template and docs from a domain spec, for review")
    p.add_argument("spec", nargs="?", help="domain spec (TOML), e.g. docs/specs/supplier.toml")
    p.add_argument("--engine", help="mysql, postgres, mongodb or dynamodb")
    p.add_argument("--out", help="project folder to write into (default: the project root)")
    p.add_argument("--force", action="store_true", help="overwrite files whose content differs")
    p.add_argument("--describe", metavar="TEXT",
                   help="ask the chat endpoint in BEDS_LLM_URL / BEDS_LLM_MODEL for a spec")
    p.add_argument("--write", metavar="SPEC",
                   help="with --describe: the spec file to write (default docs/specs/NAME.toml)")


def run_scaffold(args: argparse.Namespace, project: Path,
                 environ: Mapping[str, str] | None = None) -> int:
    """The `scaffold` subcommand; `project` is the folder above config/; `environ` the
    environment (with ./.env) the chat endpoint of --describe is read from."""
    out = Path(args.out) if args.out else project
    if args.describe is not None:
        if args.spec or args.engine:
            raise ConfigError("scaffold: --describe writes a spec only; run `beds scaffold "
                              "SPEC --engine ...` on it after review")
        from beds.scaffold.describe import describe_to_file

        return describe_to_file(args.describe, Path(args.write) if args.write else None,
                                out, args.force, environ)
    if not args.spec or not args.engine:
        raise ConfigError("scaffold: usage: beds scaffold SPEC.toml --engine "
                          "mysql|postgres|mongodb|dynamodb "
                          "[--out DIR] [--force]")
    for path, state in scaffold(Path(args.spec), args.engine, out, args.force):
        print(f"{state} {path}")
    print("next: review these files, then `beds schema apply --datasource NAME` and "
          "`beds templates check`")
    return 0


def scaffold(spec_path: Path, engine: str, out: Path, force: bool = False) -> list[tuple[Path, str]]:
    """Generate and write; returns (path, "wrote" | "unchanged") per file."""
    from beds.scaffold.generate import build
    from beds.scaffold.spec import load_spec

    spec = load_spec(spec_path)
    schema_dir = out / "schema" / engine
    files = build(spec, engine, existing_names(schema_dir, spec.name))
    planned = [
        (schema_dir / f"{schema_number(schema_dir, spec.name)}_{spec.name}{files.schema_suffix}",
         files.schema),
        (out / "templates" / f"{spec.name}.toml", files.template),
        (out / "docs" / "templates" / f"{spec.name}.md", files.doc),
    ]
    return write_all(planned, force)


def schema_number(schema_dir: Path, name: str) -> str:
    """The number this domain's file already has, else the next ten after the highest."""
    highest = 0
    for path in sorted(schema_dir.glob("*")) if schema_dir.is_dir() else []:
        match = SCHEMA_FILE_RE.fullmatch(path.name)
        if match is None:
            continue
        if match.group(2) == name:
            return match.group(1)
        highest = max(highest, int(match.group(1)))
    number = (highest // 10 + 1) * 10
    if number > 999:
        raise ConfigError(f"{schema_dir}: no three-digit file number is left after {highest}")
    return f"{number:03d}"


def existing_names(schema_dir: Path, name: str) -> Existing:
    """Names each section of the directory's other JSON files defines (not this domain's own
    file, which is regenerated). A file that does not parse is left to `beds schema apply`."""
    found: dict[str, set[str]] = {}
    for path in sorted(schema_dir.glob("*.json")) if schema_dir.is_dir() else []:
        match = SCHEMA_FILE_RE.fullmatch(path.name)
        if match is not None and match.group(2) == name:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for section, entries in data.items() if isinstance(data, dict) else ():
            if isinstance(entries, dict):
                found.setdefault(section, set()).update(entries)
    return Existing({section: frozenset(names) for section, names in found.items()})


def write_all(planned: list[tuple[Path, str]], force: bool) -> list[tuple[Path, str]]:
    differing = [path for path, text in planned
                 if path.exists() and path.read_text(encoding="utf-8") != text]
    if differing and not force:
        names = ", ".join(str(p) for p in differing)
        raise ConfigError(f"{names}: exists with other content; nothing was written (review "
                          "the differences, then rerun with --force to overwrite)")
    done: list[tuple[Path, str]] = []
    for path, text in planned:
        if path.exists() and path not in differing:
            done.append((path, "unchanged"))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        done.append((path, "wrote"))
    return done
