"""``--help`` of every command, and ``acpcheck completion bash|zsh`` tried in real shells.

Help: each command's ``--help`` (in a real process) has a description, examples whose
lines are kept whole at any width, and its exit codes, written from the exit codes of
acpcheck/model/result.py. Completion: the generated bash script is sourced in bash and
its function called as bash calls it (``COMP_WORDS``/``COMP_CWORD``, and ``COMP_LINE`` the
way a terminal gives it); the zsh script is loaded into an interactive zsh (``zpty``),
a line is typed with a TAB, and the candidates zsh offers are read back.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from runner import acpcheck

from acpcheck import cli
from acpcheck.catalog import load_catalog
from acpcheck.completion import FREE_TEXT, VALUES, commands_of, subcommands
from acpcheck.model import result
from acpcheck.model.check import AREAS
from acpcheck.model.profile import builtin_profiles
from acpcheck.remediation.cli import parser as remediation_parser

ROOT = Path(__file__).resolve().parents[2]
EXIT_CODES = {value for name, value in vars(result).items() if name.startswith("EXIT_")}
COMMANDS = commands_of(cli._parser(), replacements=subcommands(remediation_parser()))
#: Commands whose --help is acpcheck's (the lab's is its own distribution's).
OWN = [c.name for c in COMMANDS if c.name != "lab"]


def help_of(*command: str, columns: int = 80) -> str:
    done = acpcheck(*command, "--help", env={"COLUMNS": str(columns)})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def section(text: str, heading: str) -> list[str]:
    """The lines under ``heading:`` up to the next blank line."""
    lines = text.split(f"\n{heading}:\n", 1)[1].split("\n\n", 1)[0]
    return lines.splitlines()


def exit_rows(text: str) -> dict[int, str]:
    rows: dict[int, str] = {}
    code = None
    for line in section(text, "exit codes"):
        row = re.match(r"  (\d+) +(.*)", line)
        if row:
            code = int(row.group(1))
            rows[code] = row.group(2)
        else:
            assert code is not None and line.startswith("       "), line  # a meaning wrapped under itself
            rows[code] += " " + line.strip()
    return rows


@pytest.mark.parametrize("command", OWN)
def test_every_command_has_a_description_examples_and_exit_codes(command: str) -> None:
    text = help_of(command)
    description = text.split("\n\n", 2)[1]  # after the usage
    assert len(description.split()) >= 8 and not description.startswith(("positional", "options")), description
    examples = section(text, "examples")
    commands = [line.strip() for line in examples if not line.startswith("    ")]
    assert commands and all(line.startswith(("acpcheck ", "source <(acpcheck ")) for line in commands)
    assert all(f"acpcheck {command}" in line for line in commands[:1]), "the first example is this command's"
    codes = exit_rows(text)
    assert set(codes) <= EXIT_CODES and result.EXIT_OK in codes and result.EXIT_BAD_INPUT in codes
    assert all(len(meaning.split()) >= 1 for meaning in codes.values())
    assert max(len(line) for line in text.splitlines()) <= 80


def test_run_lists_each_of_its_exit_codes() -> None:
    codes = exit_rows(help_of("run"))
    assert set(codes) == {0, 1, 2, 3, 4, 5}
    assert "FAIL" in codes[result.EXIT_FAIL] and "nothing selected" in codes[result.EXIT_NOTHING_SELECTED]
    assert exit_rows(help_of("remediate"))[result.EXIT_INTERRUPTED].startswith("interrupted")


def test_example_commands_keep_their_lines_on_a_narrow_terminal() -> None:
    wide, narrow = help_of("run", columns=200), help_of("run", columns=40)
    commands = [line for line in section(wide, "examples") if line.startswith("  acpcheck")]
    assert len(commands) >= 5
    assert all(line in narrow.splitlines() for line in commands)
    # the prose around them is wrapped to the terminal
    assert max(len(line) for line in section(narrow, "exit codes")) <= 40


def test_top_level_help_lists_every_command() -> None:
    text = help_of()
    assert all(re.search(rf"^    {c.name}\b", text, re.M) for c in COMMANDS)
    assert "examples:" in text and "acpcheck run --plan plan.yaml" in text


def test_an_unknown_shell_is_bad_input() -> None:
    done = acpcheck("completion", "fish")
    assert done.returncode == result.EXIT_BAD_INPUT
    assert "invalid choice: 'fish'" in done.stderr and done.stdout == ""


def test_every_option_value_is_completed_or_declared_free_text() -> None:
    for command in COMMANDS:
        for argument in command.arguments:
            if argument.takes_value and not argument.choices:
                assert argument.dest in VALUES or argument.dest in FREE_TEXT, (command.name, argument.dest)


# ---------------------------------------------------------------------------
# bash


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    done = acpcheck("completion", "bash")
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("completion") / "acpcheck.bash"
    path.write_text(done.stdout)
    return path


def bash_complete(script: Path, *words: str, line: str | None = None, cwd: Path = ROOT) -> list[str]:
    """What ``_acpcheck`` puts in COMPREPLY for ``words`` (the last one being completed). With
    ``line``, as bash calls it from a terminal: COMP_LINE/COMP_POINT, and COMP_WORDS split at ":" and "=" too."""
    setup = f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}"
    if line is not None:
        setup += f"; COMP_LINE={line!r}; COMP_POINT={len(line)}"
    program = f'source {script} && {setup} && _acpcheck && printf "%s\\n" "${{COMPREPLY[@]}}"'
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, cwd=cwd, timeout=30, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [word for word in done.stdout.splitlines() if word]


def test_bash_script_passes_shellcheck(bash_script: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed on this machine")
    done = subprocess.run(["shellcheck", "--shell=bash", str(bash_script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_bash_completes_commands(bash_script: Path) -> None:
    assert bash_complete(bash_script, "acpcheck", "ru") == ["run"]
    offered = bash_complete(bash_script, "acpcheck", "")
    assert [c.name for c in COMMANDS] == [w for w in offered if not w.startswith("-")]
    assert "completion" in offered and "--version" in offered
    assert bash_complete(bash_script, "acpcheck", "--version", "ru") == ["run"]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_bash_completes_every_option_of_every_command(bash_script: Path, command: object) -> None:
    expected = {name for argument in command.options for name in argument.names}  # type: ignore[attr-defined]
    assert set(bash_complete(bash_script, "acpcheck", command.name, "-")) == expected  # type: ignore[attr-defined]


def test_bash_completes_option_values(bash_script: Path) -> None:
    assert bash_complete(bash_script, "acpcheck", "run", "--p") == ["--plan", "--profile"]
    assert bash_complete(bash_script, "acpcheck", "remediate", "--a") == ["--apply", "--allow-removals"]
    profiles = bash_complete(bash_script, "acpcheck", "run", "--profile", "")
    assert profiles[: len(builtin_profiles())] == builtin_profiles() and "pyproject.toml" in profiles  # or a file
    assert bash_complete(bash_script, "acpcheck", "run", "--profile", "pre") == ["preinstall"]
    assert bash_complete(bash_script, "acpcheck", "run", "--plan", "examples/work") == [
        "examples/workload-kube-ovn.yaml"
    ]
    assert bash_complete(bash_script, "acpcheck", "run", "--out", "exa") == ["examples"]  # directories only
    assert bash_complete(bash_script, "acpcheck", "list", "--area", "") == list(AREAS)
    assert bash_complete(bash_script, "acpcheck", "completion", "") == ["bash", "zsh"]
    assert bash_complete(bash_script, "acpcheck", "run", "--context", "") == []  # free text


def test_bash_completes_check_ids_and_selectors(bash_script: Path) -> None:
    node_00 = sorted(c for c in load_catalog() if c.startswith("ACP-NODE-00"))
    assert bash_complete(bash_script, "acpcheck", "explain", "ACP-NODE-00") == node_00
    assert bash_complete(bash_script, "acpcheck", "explain", "acp-node-00") == node_00  # explain takes any case
    assert bash_complete(bash_script, "acpcheck", "run", "--check", "ACP-NODE-00") == node_00
    assert bash_complete(bash_script, "acpcheck", "run", "--check", "area:N") == ["area:NODE", "area:NET"]
    assert bash_complete(bash_script, "acpcheck", "remediate", "--check", "scope:") == [
        "scope:plan",
        "scope:node",
        "scope:cluster",
        "scope:fleet",
    ]


def test_bash_completes_as_a_terminal_splits_the_words(bash_script: Path) -> None:
    """bash splits "area:N" and "--plan=F" at ":" and "=", and replaces only the part after the last ":"."""
    line = "acpcheck run --check area:N"
    assert bash_complete(bash_script, "acpcheck", "run", "--check", "area", ":", "N", line=line) == ["NODE", "NET"]
    line = "acpcheck run --plan=examples/work"
    words = ("acpcheck", "run", "--plan", "=", "examples/work")
    assert bash_complete(bash_script, *words, line=line) == ["examples/workload-kube-ovn.yaml"]


def test_bash_completes_the_run_ids_of_journals(bash_script: Path, tmp_path: Path) -> None:
    for run in ("20261207-101010-aaaa", "20261207-111111-bbbb"):
        (tmp_path / "reports" / "out" / run / "journal").mkdir(parents=True)
        (tmp_path / "reports" / "out" / run / "journal" / "run.json").write_text("{}")
    (tmp_path / "reports" / "out" / "a-run-without-journal").mkdir()
    offered = bash_complete(bash_script, "acpcheck", "rollback", "", cwd=tmp_path)
    assert offered == ["20261207-101010-aaaa", "20261207-111111-bbbb"]


# ---------------------------------------------------------------------------
# zsh

#: Types the line and a TAB into an interactive zsh that has compinit and the script loaded,
#: and writes every candidate completion offers (compadd, wrapped) to $OUTFILE.
ZSH_TYPIST = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT= ; autoload -U compinit; compinit -u -D"
zpty -w z "source ${(q)SCRIPT}"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a hits; builtin compadd -A hits "$@"; local ret=$?
  (( $#hits )) && print -l -- $hits >> $OUTFILE
  builtin compadd "$@"; return ret
}'
zpty -w z "zstyle ':completion:*' list-prompt ''; zstyle ':completion:*' menu no; touch $OUTFILE.ready"
for i in {1..300}; do [[ -e $OUTFILE.ready ]] && break; sleep 0.1; done
zpty -w -n z "$LINE"$'\t'
for i in {1..200}; do [[ -s $OUTFILE ]] && break; sleep 0.1; done
sleep 0.3  # the rest of the candidates
zpty -d z
"""
ZSH = shutil.which("zsh")


@pytest.fixture(scope="module")
def zsh_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if ZSH is None:
        pytest.skip("zsh is not installed on this machine (scripts/setup-system.sh installs it)")
    done = acpcheck("completion", "zsh")
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("completion") / "_acpcheck"
    path.write_text(done.stdout)
    return path


def zsh_complete(script: Path, line: str, tmp_path: Path) -> list[str]:
    out = tmp_path / "candidates"
    typist = tmp_path / "typist.zsh"
    typist.write_text(ZSH_TYPIST)
    environment = {**os.environ, "SCRIPT": str(script), "OUTFILE": str(out), "LINE": line}
    done = subprocess.run(
        [str(ZSH), "-f", str(typist)], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return out.read_text().split() if out.exists() else []


def test_zsh_script_parses(zsh_script: Path) -> None:
    done = subprocess.run([str(ZSH), "-n", str(zsh_script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert zsh_script.read_text().startswith("#compdef acpcheck\n")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("acpcheck ru", ["run"]),
        ("acpcheck remediate --a", ["--apply", "--allow-removals"]),
        ("acpcheck run --profile pre", ["preinstall"]),
        ("acpcheck run --check area:N", ["area:NODE", "area:NET"]),
        ("acpcheck list --area N", ["NODE", "NET"]),
        ("acpcheck run --plan examples/work", ["workload-kube-ovn.yaml"]),
    ],
)
def test_zsh_completes_in_a_real_shell(zsh_script: Path, tmp_path: Path, line: str, expected: list[str]) -> None:
    assert zsh_complete(zsh_script, line, tmp_path) == expected


def test_zsh_completes_check_ids(zsh_script: Path, tmp_path: Path) -> None:
    offered = zsh_complete(zsh_script, "acpcheck explain ACP-NET-00", tmp_path)
    assert offered == sorted(c for c in load_catalog() if c.startswith("ACP-NET-00"))
