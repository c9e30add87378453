"""``acpcheck completion bash|zsh``: a shell completion script, written from the commands' parsers.

The script is static: it is generated from the argparse tree of this version (every
command, its options and what each option's value is) and the names a value can take
now (the built-in profiles, the check catalogue, the selectors). A completion therefore
starts no Python process; the script says to generate it again after an upgrade. Only
the run ids of ``rollback`` are looked up when completing (journals under
``reports/out/``, the default place of a remediation run).

How an option's value is completed is said once, by its destination name (``VALUES``);
an option that takes a value and is not named there takes free text (``FREE_TEXT``),
and tests/cli/test_help_and_completion.py keeps every option in one of the two.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from acpcheck import __version__
from acpcheck.constants import DEFAULT_OUT

SHELLS = ("bash", "zsh")

# What a value is completed with.
FILES = "files"
DIRECTORIES = "directories"
PROFILES = "profiles"  # a built-in profile's name, or a profile file
CHECKS = "checks"  # a check id
SELECTORS = "selectors"  # a --check selector: a check id, area:X, scope:X, tag:X
RUNS = "runs"  # the run id of a remediation journal under DEFAULT_OUT

#: Option (or positional) destination -> what its value is completed with.
VALUES = {
    "plan": FILES,
    "fleet": FILES,
    "waivers": FILES,
    "kubeconfig": FILES,
    "results": FILES,  # remediate --from
    "baseline": FILES,  # run --baseline: an earlier results.json
    "old": FILES,  # diff OLD NEW: two results.json files
    "new": FILES,
    "out": DIRECTORIES,
    "facts": DIRECTORIES,
    "alluredir": DIRECTORIES,
    "journal_dir": DIRECTORIES,
    "profile": PROFILES,
    "check": SELECTORS,
    "id": CHECKS,  # explain
    "run_id": RUNS,  # rollback
}
#: Values nothing can guess: completed with nothing (zsh says what the value is).
FREE_TEXT = {"context", "request_timeout", "etcd_sample", "workers", "pytest_args", "tx"}


@dataclass(frozen=True)
class Argument:
    """One option or positional of a command, as the shells need it."""

    names: tuple[str, ...]  # option strings; empty for a positional
    dest: str
    help: str
    takes_value: bool
    repeatable: bool
    choices: tuple[str, ...] = ()

    @property
    def values(self) -> str | None:
        return VALUES.get(self.dest)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: tuple[Argument, ...]

    @property
    def options(self) -> list[Argument]:
        return [a for a in self.arguments if a.names]

    @property
    def positionals(self) -> list[Argument]:
        return [a for a in self.arguments if not a.names]


def _arguments(parser: argparse.ArgumentParser) -> tuple[Argument, ...]:
    out = []
    for action in parser._actions:  # argparse has no public list of a parser's arguments
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        out.append(
            Argument(
                names=tuple(action.option_strings),
                dest=action.dest,
                help=" ".join((action.help or "").split()),
                takes_value=action.nargs != 0,
                repeatable=isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+"),
                choices=tuple(str(choice) for choice in action.choices or ()),
            )
        )
    return tuple(out)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each command of ``parser``, by name, in its order."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def commands_of(top: argparse.ArgumentParser, replacements: Mapping[str, argparse.ArgumentParser]) -> list[Command]:
    """The commands of ``top``, in its order; a command named in ``replacements`` takes the options
    of that parser (``remediate`` and ``rollback`` keep theirs in acpcheck/remediation/cli.py)."""
    subparsers = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: " ".join((choice.help or "").split()) for choice in subparsers._choices_actions}
    return [
        Command(name, helps.get(name, ""), _arguments(replacements.get(name, parser)))
        for name, parser in subcommands(top).items()
    ]


def words() -> dict[str, list[str]]:
    """The names a value can take now: built-in profiles, check ids and selectors."""
    from acpcheck.catalog import load_catalog
    from acpcheck.model.check import AREAS, Scope
    from acpcheck.model.profile import builtin_profiles

    catalog = load_catalog()
    tags = sorted({tag for meta in catalog.values() for tag in meta.tags})
    return {
        PROFILES: builtin_profiles(),
        CHECKS: sorted(catalog),
        SELECTORS: [
            *sorted(catalog),
            *(f"area:{area}" for area in AREAS),
            *(f"scope:{scope.value}" for scope in Scope),
            *(f"tag:{tag}" for tag in tags),
        ],
    }


def script(shell: str, top: argparse.ArgumentParser, commands: list[Command], names: dict[str, list[str]]) -> str:
    if shell == "bash":
        return bash_script(top, commands, names)
    if shell == "zsh":
        return zsh_script(top, commands, names)
    raise ValueError(f"no completion for {shell!r}: {', '.join(SHELLS)}")


# ---------------------------------------------------------------------------
# bash


def bash_script(top: argparse.ArgumentParser, commands: list[Command], names: dict[str, list[str]]) -> str:
    top_words = [c.name for c in commands] + [n for a in _arguments(top) for n in a.names]
    cases = "\n".join(_bash_command(command) for command in commands)
    return f"""\
# bash completion for acpcheck {__version__}, written by `acpcheck completion bash`: generate it again after an
# upgrade. Use: `source <(acpcheck completion bash)` in ~/.bashrc.

_acpcheck_profiles="{" ".join(names[PROFILES])}"
_acpcheck_checks="{" ".join(names[CHECKS])}"
_acpcheck_selectors="{" ".join(names[SELECTORS])}"

_acpcheck_add() {{  # the lines of the command $@ prints, added to COMPREPLY
    mapfile -t -O "${{#COMPREPLY[@]}}" COMPREPLY < <("$@")
}}

_acpcheck_values() {{  # the values of kind $1 that start with $cur
    case $1 in
        {FILES}) compopt -o filenames 2>/dev/null; _acpcheck_add compgen -f -- "$cur" ;;
        {DIRECTORIES}) compopt -o filenames 2>/dev/null; _acpcheck_add compgen -d -- "$cur" ;;
        {PROFILES}) _acpcheck_add compgen -W "$_acpcheck_profiles" -- "$cur"; _acpcheck_values {FILES} ;;
        {CHECKS}) _acpcheck_add compgen -W "$_acpcheck_checks" -- "${{cur^^}}" ;;  # explain takes any case
        {SELECTORS}) _acpcheck_add compgen -W "$_acpcheck_selectors" -- "$cur" ;;
        {RUNS})
            local journal runs=()
            for journal in {DEFAULT_OUT.as_posix()}/*/journal/run.json; do
                [[ -e $journal ]] && journal=${{journal%/journal/run.json}} && runs+=("${{journal##*/}}")
            done
            _acpcheck_add compgen -W "${{runs[*]}}" -- "$cur" ;;
        choices:*) _acpcheck_add compgen -W "${{1#choices:}}" -- "$cur" ;;
        words:*) _acpcheck_add compgen -W "${{1#words:}}" -- "$cur" ;;
    esac
}}

_acpcheck() {{
    # The words up to the cursor, split at spaces only: bash also splits at ":" and "=" (COMP_WORDBREAKS),
    # which would cut "area:NET" and "--plan=FILE" in two. COMP_LINE is unset when called by hand.
    local words cword
    if [[ -n ${{COMP_LINE-}} ]]; then
        read -ra words <<<"${{COMP_LINE:0:COMP_POINT}}"
        [[ ${{COMP_LINE:0:COMP_POINT}} == *[[:space:]] ]] && words+=("")
        cword=$((${{#words[@]}} - 1))
    else
        words=("${{COMP_WORDS[@]:0:COMP_CWORD+1}}")
        cword=$COMP_CWORD
    fi
    local cur=${{words[cword]}} prev=${{words[cword-1]}}
    if [[ $cur == -*=* ]]; then
        prev=${{cur%%=*}}
        cur=${{cur#*=}}
    fi
    local command='' i
    for ((i = 1; i < cword; i++)); do
        if [[ ${{words[i]}} != -* ]]; then
            command=${{words[i]}}
            break
        fi
    done
    COMPREPLY=()
    case $command in
        "") _acpcheck_values "words:{" ".join(top_words)}" ;;
{cases}
    esac
    # bash (not a call by hand) replaces only the part of the word after its last ":": that part of each reply
    if [[ -n ${{COMP_LINE-}} && $cur == *:* && ${{COMP_WORDBREAKS-}} == *:* ]]; then
        COMPREPLY=("${{COMPREPLY[@]#"${{cur%"${{cur##*:}}"}}"}}")
    fi
}}

complete -F _acpcheck acpcheck
"""


def _bash_kind(argument: Argument) -> str:
    if argument.choices:
        return "choices:" + " ".join(argument.choices)
    return argument.values or ""


def _bash_command(command: Command) -> str:
    """The case branch of one command: the value of the option before the cursor, else its options
    (or, for a word that is no option, its positional's values)."""
    lines = [f"        {command.name})", "            case $prev in"]
    by_kind: dict[str, list[str]] = {}
    for option in command.options:
        if option.takes_value:
            by_kind.setdefault(_bash_kind(option), []).extend(option.names)
    for kind, names in by_kind.items():
        lines.append(f'                {"|".join(names)}) _acpcheck_values "{kind}" ;;')
    options = "words:" + " ".join(n for option in command.options for n in option.names)
    positional = next((_bash_kind(p) for p in command.positionals if _bash_kind(p)), "")
    if positional:
        otherwise = f'if [[ $cur == -* ]]; then _acpcheck_values "{options}"; else _acpcheck_values "{positional}"; fi'
    else:
        otherwise = f'_acpcheck_values "{options}"'
    lines += [f"                *) {otherwise} ;;", "            esac", "            ;;"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# zsh


def _zsh_quoted(text: str) -> str:
    """``text`` in single quotes for zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_bracketed(text: str) -> str:
    """A help text inside an _arguments spec's [...]."""
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _zsh_action(argument: Argument) -> str:
    if argument.choices:
        return "(" + " ".join(argument.choices) + ")"
    return {
        FILES: "_files",
        DIRECTORIES: "_files -/",
        PROFILES: "_acpcheck_profiles",
        CHECKS: "_acpcheck_checks",
        SELECTORS: "_acpcheck_selectors",
        RUNS: "_acpcheck_runs",
    }.get(argument.values or "", " ")


def _zsh_specs(arguments: tuple[Argument, ...]) -> list[str]:
    specs = []
    for argument in arguments:
        message = argument.dest.replace("_", " ")
        if not argument.names:
            position = "*" if argument.repeatable else "1"
            specs.append(f"{position}:{message}:{_zsh_action(argument)}")
            continue
        exclusive = f"({' '.join(argument.names)})" if len(argument.names) > 1 and not argument.repeatable else ""
        if argument.dest in ("help", "version"):  # each ends the command line
            exclusive = "(- *)"
        for name in argument.names:
            form = ("=" if name.startswith("--") else "+") if argument.takes_value else ""
            spec = f"{exclusive}{'*' if argument.repeatable else ''}{name}{form}[{_zsh_bracketed(argument.help)}]"
            if argument.takes_value:
                spec += f":{message}:{_zsh_action(argument)}"
            specs.append(spec)
    return specs


def zsh_script(top: argparse.ArgumentParser, commands: list[Command], names: dict[str, list[str]]) -> str:
    top_specs = "".join(f"        {_zsh_quoted(spec)} \\\n" for spec in _zsh_specs(_arguments(top)))
    described = "\n".join(f"            {_zsh_quoted(c.name + ':' + c.help)}" for c in commands)
    cases = "\n".join(
        f"        {c.name})\n            _arguments -S \\\n"
        + " \\\n".join(f"                {_zsh_quoted(spec)}" for spec in _zsh_specs(c.arguments))
        + " ;;"
        for c in commands
    )
    return f"""\
#compdef acpcheck
# zsh completion for acpcheck {__version__}, written by `acpcheck completion zsh`: generate it again after an
# upgrade. Use: `source <(acpcheck completion zsh)` in ~/.zshrc after compinit, or save it as _acpcheck in a
# directory of $fpath.

_acpcheck_profiles() {{
    _alternative 'profiles:built-in profile:({" ".join(names[PROFILES])})' 'files:profile file:_files'
}}

_acpcheck_checks() {{
    compadd -- {" ".join(names[CHECKS])}
}}

_acpcheck_selectors() {{
    compadd -- {" ".join(names[SELECTORS])}
}}

_acpcheck_runs() {{
    local -a runs=({DEFAULT_OUT.as_posix()}/*/journal/run.json(N:h:h:t))
    _describe -t runs 'remediation run' runs
}}

_acpcheck() {{
    local curcontext=$curcontext state line
    typeset -A opt_args
    _arguments -C \\
{top_specs}        '1:command:->command' \\
        '*::argument:->argument'
    case $state in
    command)
        local -a commands=(
{described}
        )
        _describe -t commands 'acpcheck command' commands
        ;;
    argument)
        curcontext=${{curcontext%:*:*}}:acpcheck-$line[1]:
        case $line[1] in
{cases}
        esac
        ;;
    esac
}}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _acpcheck "$@"  # autoloaded from $fpath
else
    compdef _acpcheck acpcheck  # sourced
fi
"""
