"""`beds completion bash|zsh`: a completion script drawn from the argparse tree.

Layer: interface (CLI). Pure: walks the parser, returns text. The script knows every command
path (`templates check`), the options of each, the choices of positional arguments and the
built-in role names after `--role`; anything else falls back to file names (`--config PATH`).
zsh runs the same function through its bash-completion layer (bashcompinit).
"""

from __future__ import annotations

import argparse

ROLES = ("appServer", "admin", "segundo", "tercero")


def _paths(parser: argparse.ArgumentParser, path: str = "") -> dict[str, list[str]]:
    """Command path ("" for the top, "templates check") -> the words that may follow it."""
    words: list[str] = []
    found: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words.append(name)
                found.update(_paths(child, f"{path} {name}".strip()))
        elif action.option_strings:
            words += [o for o in action.option_strings if o.startswith("--") or o == "-h"]
        elif action.choices:
            words += [str(c) for c in action.choices]
    found[path] = sorted(dict.fromkeys(words))
    return found


def bash_function(parser: argparse.ArgumentParser) -> str:
    paths = _paths(parser)
    known = " ".join(f"|{p}|" for p in paths if p)
    cases = "\n".join(f'        "{p}") words="{" ".join(w)}" ;;' for p, w in sorted(paths.items()))
    return f"""_beds() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local path="" next w i words
    local known="{known}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        next="${{path:+$path }}$w"
        case "$known" in *"|$next|"*) path="$next" ;; esac
    done
    if [[ "$prev" == "--role" ]]; then
        COMPREPLY=($(compgen -W "{" ".join(ROLES)}" -- "$cur"))
        return
    fi
    case "$path" in
{cases}
        *) words="" ;;
    esac
    if [[ "$cur" != -* ]]; then   # a word, not an option: offer subcommands and choices only
        local plain=""
        for w in $words; do [[ "$w" == -* ]] || plain="$plain $w"; done
        words="$plain"
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _beds beds
"""


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    if shell == "zsh":
        return ("#compdef beds\n# beds completion for zsh: eval \"$(beds completion zsh)\" in "
                "~/.zshrc\n(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }\n"
                "autoload -U +X bashcompinit && bashcompinit\n" + bash_function(parser))
    return ("# beds completion for bash: source <(beds completion bash), or save it under "
            "/etc/bash_completion.d/\n" + bash_function(parser))
