"""The programs acpcheck runs on nodes (listeners, connectors, the VRRP probe) are package
data files (``acpcheck/sources/nodeprograms``), checked here as any code is: ``sh -n``
and shellcheck, ``perl -c``, and ruff and the byte compiler for Python."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from acpcheck.sources.nodeside import connector_command, listener_command, node_program

PROGRAMS = Path(__file__).resolve().parents[2] / "acpcheck" / "sources" / "nodeprograms"


def programs(suffix: str) -> list[Path]:
    found = sorted(PROGRAMS.glob(f"*{suffix}"))
    assert found, f"no {suffix} program in {PROGRAMS}"
    return found


def ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("program", programs(".sh"), ids=ids(programs(".sh")))
def test_sh_programs_parse(program: Path) -> None:
    done = run("sh", "-n", str(program))
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed on this machine")
@pytest.mark.parametrize("program", programs(".sh"), ids=ids(programs(".sh")))
def test_sh_programs_pass_shellcheck(program: Path) -> None:
    # POSIX sh; the variables the command line sets before each program (N, I, B, SPECS,
    # T, NCV, TO, PAR) are assigned outside the file (SC2154), and word splitting of
    # $SPECS, $B and $NCVERBOSE is wanted (SC2086).
    done = run("shellcheck", "--shell=sh", "--exclude=SC2154,SC2086", str(program))
    assert done.returncode == 0, done.stdout


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed on this machine")
@pytest.mark.parametrize("program", programs(".pl"), ids=ids(programs(".pl")))
def test_perl_programs_compile(program: Path) -> None:
    done = run("perl", "-c", str(program))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("program", programs(".py"), ids=ids(programs(".py")))
def test_python_programs_compile(program: Path) -> None:
    compile(program.read_text(encoding="utf-8"), str(program), "exec")


def test_python_programs_pass_ruff() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed in this environment")
    done = run(ruff, "check", "--no-cache", str(PROGRAMS))
    assert done.returncode == 0, done.stdout
    done = run(ruff, "format", "--check", "--no-cache", str(PROGRAMS))
    assert done.returncode == 0, done.stdout


def test_commands_carry_the_programs() -> None:
    listener = listener_command("0123456789abcdef", "cp1", [("tcp", 6443), ("udp", 8472)])
    connector = connector_command(2.0)
    for name in ("listener.py", "listener.pl", "listener.sh", "nc_flavour.sh"):
        assert node_program(name).splitlines()[-1] in listener, name
    for name in ("connector.py", "connector.pl", "connector.sh", "nc_flavour.sh"):
        assert node_program(name).splitlines()[-1] in connector, name
    for command in (listener, connector):
        done = run("sh", "-n", "-c", command)
        assert done.returncode == 0, done.stderr
