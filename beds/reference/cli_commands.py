"""Every `beds` command and flag, read from the argparse parser the CLI itself builds.

Layer: tooling. Walks `beds.cli._parser()` (the parser `beds` runs), so a flag added there is
documented at the next docs build.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from beds import cli
from beds.reference.markdown import cell, code, table

_WIDTH = 96


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """(command words, its parser, its one-line help), depth first, in declaration order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name, "")
                yield from _commands(sub, (*path, name))


def _flag(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(action.option_strings)
        if action.nargs == 0:
            return f"`{names}`"
        return f"`{names} {action.metavar or action.dest.upper()}`"
    return f"`{action.metavar or action.dest.upper()}`" + (" (optional)"
                                                           if action.nargs == "?" else "")


def _default(action: argparse.Action) -> str:
    if action.required:
        return "**required**"
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return "—"
    return code(action.default)


def _arguments(parser: argparse.ArgumentParser, shared: frozenset[str] = frozenset()) -> str:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if shared and action.option_strings and action.option_strings[0] in shared:
            continue
        choices = ", ".join(f"`{c}`" for c in action.choices) if action.choices else ""
        help_text = cell(action.help or "") + (f" (one of {choices})" if choices else "")
        rows.append([_flag(action), _default(action), help_text or "—"])
    if not rows:
        return "No arguments."
    return table(["argument", "default", "meaning"], rows)


def _usage(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=_WIDTH)
    return parser.format_usage().strip()


def cli_reference() -> str:
    """Markdown: the top-level usage, then a section per command with its arguments."""
    root = cli._parser()
    root.prog = "beds"
    commands = list(_commands(root))
    # Options every command takes (the parser's shared parent: --config, --env) are listed once.
    shared = frozenset.intersection(*(
        frozenset(s for a in sub._actions for s in a.option_strings[:1]) for _w, sub, _h in commands
    )) - {"-h"}
    parts = [f"```\n{_usage(root)}\n```", "### `beds` (run a node)",
             "Every command below also takes " + ", ".join(f"`{s}`" for s in sorted(shared))
             + " (see this table) and `-h`/`--help`.", _arguments(root)]
    for words, sub, help_text in commands:
        sub.prog = "beds " + " ".join(words)
        parts += [f"### `beds {' '.join(words)}`", cell(help_text) or "",
                  f"```\n{_usage(sub)}\n```", _arguments(sub, shared)]
    return "\n\n".join(p for p in parts if p)
