"""Hostile and careless input, hand-made, through the real command (issue 10).

The generated cases are in tests/fuzz; these are the ones a person writes on
purpose: special files, an alias bomb, concurrent runs on one --out, options,
params, secret references, and what every one of them must print.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner import acpcheck

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOOD = EXAMPLES / "workload-kube-ovn.yaml"
DEFECTIVE = EXAMPLES / "defective" / "workload-with-defects.yaml"
BASE = GOOD.read_text()
SECRET = "Zq9-Hunter2-canary"


def clean(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    return output


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
@pytest.mark.parametrize("role", ["--plan", "--profile", "--waivers"])
def test_special_files_are_refused_at_once(tmp_path: Path, kind: str, role: str) -> None:
    special = tmp_path / "special.yaml"
    if kind == "fifo":
        os.mkfifo(special)
    elif kind == "dev-zero":
        special.symlink_to("/dev/zero")
    else:
        special.mkdir()
    args = {"--plan": str(GOOD), "--profile": "plan", "--waivers": None}
    args[role] = str(special)
    argv = [part for option, value in args.items() if value for part in (option, value)]
    started = time.monotonic()
    result = acpcheck("run", *argv, "--out", str(tmp_path / "out"), timeout=30)
    assert time.monotonic() - started < 20
    assert result.returncode == 4, clean(result)
    assert f"{special}: not a regular file" in clean(result)
    assert not (tmp_path / "out").exists()


def test_alias_bomb_plan_is_refused_in_bounded_time_and_memory(tmp_path: Path) -> None:
    levels = ["&a0 [" + ",".join(["lol"] * 9) + "]"] + [
        f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)
    ]
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        BASE.replace("    nodeName: ip\n", "    nodeName: ip\n    annotations: {bomb: [" + ", ".join(levels) + "]}\n")
    )
    started = time.monotonic()
    result = acpcheck("validate", "--plan", str(plan), timeout=30)
    assert time.monotonic() - started < 10
    assert result.returncode == 4
    assert f"{plan}:" in clean(result) and "aliases expand to more than" in result.stderr


def test_size_limit_is_overridable(tmp_path: Path) -> None:
    small = acpcheck("validate", "--plan", str(GOOD), env={"ACPCHECK_MAX_INPUT_BYTES": "100"})
    assert small.returncode == 4 and "file too large" in clean(small) and "ACPCHECK_MAX_INPUT_BYTES" in small.stderr
    assert acpcheck("validate", "--plan", str(GOOD), env={"ACPCHECK_MAX_INPUT_BYTES": "100000"}).returncode == 0


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "--plan", str(GOOD), "--frobnicate"], "unrecognized arguments"),
        (["run", "--profile", "plan"], "one of the arguments --plan --fleet is required"),
        (["frobnicate"], "invalid choice"),
        (["run", "--plan", str(GOOD), "--check", "nonsense"], "--check: 'nonsense' matches no check id"),
        (["run", "--plan", str(GOOD), "--check", "acp-net-001"], "did you mean ACP-NET-001?"),
        (["run", "--plan", str(GOOD), "--check", "area:XYZ"], "is not a selector"),
        (["run", "--plan", str(GOOD), "--check", "tag:no-such-tag"], "no check has the tag"),
        (["run", "--plan", str(GOOD), "-n", "many"], "-n: give a number of workers"),
    ],
)
def test_option_and_usage_errors_exit_4(tmp_path: Path, argv: list[str], words: str) -> None:
    result = (
        acpcheck(*argv, "--out", str(tmp_path / "out")) if argv[0] == "run" and "--plan" in argv else acpcheck(*argv)
    )
    assert result.returncode == 4, clean(result)
    assert words in clean(result)
    assert not (tmp_path / "out").exists()


def test_valid_selection_of_nothing_still_exits_5(tmp_path: Path) -> None:
    result = acpcheck(
        "run", "--plan", str(GOOD), "--profile", "plan", "--check", "scope:node", "--out", str(tmp_path / "out")
    )
    assert result.returncode == 5, clean(result)


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("file", "is not a directory"),
        ("file/sub", "cannot be created"),
        ("/proc/acpcheck-nope", "cannot be created"),
        ("/dev/null", "is not a directory"),
    ],
)
def test_unusable_out_is_found_before_any_check_runs(tmp_path: Path, out: str, words: str) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = acpcheck("run", "--plan", str(GOOD), "--profile", "plan", "--out", out, cwd=tmp_path)
    assert result.returncode == 4
    assert f"--out: {words}" in clean(result)
    assert "passed" not in result.stdout  # no check ran


def test_unusable_alluredir_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "allure").write_text("a file")
    result = acpcheck(
        "run",
        "--plan",
        str(GOOD),
        "--profile",
        "plan",
        "--alluredir",
        str(tmp_path / "allure"),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 4 and "--alluredir: is not a directory" in clean(result)


def test_files_acpcheck_did_not_write_are_not_overwritten_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.md").write_text("my own notes")
    refused = acpcheck("run", "--plan", str(GOOD), "--profile", "plan", "--out", str(out))
    assert refused.returncode == 4 and "holds files acpcheck did not write (summary.md)" in clean(refused)
    assert (out / "summary.md").read_text() == "my own notes"
    (out / "notes.txt").write_text("keep me")
    (out / "summary.md").unlink()
    forced = acpcheck("run", "--plan", str(GOOD), "--profile", "plan", "--out", str(out), "--force")
    assert forced.returncode == 0, clean(forced)
    assert (out / "notes.txt").read_text() == "keep me"
    again = acpcheck("run", "--plan", str(DEFECTIVE), "--profile", "plan", "--out", str(out), "--force")
    assert again.returncode == 1 and json.loads((out / "results.json").read_text())["run"]["exitCode"] == 1


def test_concurrent_runs_on_one_out_keep_their_own_exit_codes(tmp_path: Path) -> None:
    """The issue's race: a compliant and a non-compliant plan, run at once into one
    --out. Each run exits with its own code, or 4 naming the run that holds the
    directory; the directory always holds one whole, valid report set."""
    out = tmp_path / "shared"
    expected = {str(GOOD): 0, str(DEFECTIVE): 1}
    seen: list[tuple[int, int]] = []
    for _ in range(4):
        processes = {
            plan: subprocess.Popen(
                [sys.executable, "-m", "acpcheck", "run", "--plan", plan, "--profile", "plan", "--out", str(out)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            for plan in expected
        }
        codes = {}
        for plan, process in processes.items():
            stdout, stderr = process.communicate(timeout=120)
            assert "Traceback" not in stdout + stderr
            codes[plan] = process.returncode
            assert process.returncode in (expected[plan], 4), (plan, process.returncode, stdout + stderr)
            if process.returncode == 4:
                assert "is in use by another acpcheck run (pid " in stderr
        seen.append((codes[str(GOOD)], codes[str(DEFECTIVE)]))
        document = json.loads((out / "results.json").read_text())
        writer = document["run"]["plan"]
        assert codes[writer] == document["run"]["exitCode"] == expected[writer]
        sarif = json.loads((out / "results.sarif").read_text())
        assert sarif["runs"][0]["automationDetails"]["id"].endswith(document["run"]["id"])  # one run's set
        assert document["run"]["id"] in (out / "summary.md").read_text()
    assert any(code != 4 for pair in seen for code in pair)


def test_damaged_facts_of_the_wrong_shape_are_bad_input(tmp_path: Path) -> None:
    facts = tmp_path / "facts" / "nodes"
    facts.mkdir(parents=True)
    (facts / "cp1.json").write_text(
        json.dumps(
            {
                "schema": "acpcheck/facts/v1",
                "node": "cp1",
                "failure": {"kind": "auth", "message": "x", "extra": ["not", "a", "mapping"]},
            }
        )
    )
    (facts / "cp2.json").write_text(
        json.dumps({"schema": "acpcheck/facts/v1", "node": "cp2", "gathered_at": "t", "round_trip_seconds": [1]})
    )
    (facts / "w1.json").write_text(
        json.dumps({"schema": "acpcheck/facts/v1", "node": "w1", "x": float("nan")}).replace("NaN", "NaN")
    )
    result = acpcheck("run", "--plan", str(GOOD), "--facts", str(tmp_path / "facts"), "--out", str(tmp_path / "out"))
    assert result.returncode == 4
    output = clean(result)
    assert f"{facts / 'cp1.json'}: not a valid facts file: failure.extra: expected dict, got list" in output
    assert f"{facts / 'cp2.json'}: not a valid facts file: round_trip_seconds: expected a number, got list" in output
    assert f"{facts / 'w1.json'}: not readable JSON: NaN is not a number JSON allows" in output


# -- secrets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("find", "replace", "words"),
    [
        (
            "    nodeName: ip\n",
            f"    nodeName: ip\n    featureGates: [cri-docker, 'password={SECRET}']\n",
            "spec.cluster.featureGates[1]: looks like an inline secret",
        ),
        (
            "    nodeName: ip\n",
            f"    nodeName: ip\n    annotations: {{cpaas.io/platform-url: 'https://admin:{SECRET}@console.example.com'}}\n",
            "a URL with user info",
        ),
        (
            "  registry: {type: platform}",
            f"  registry: {{type: private, address: 'https://robot:{SECRET}@registry.example.com'}}",
            "spec.registry.address: a URL with user info",
        ),
        (
            "  registry: {type: platform}",
            f"  apiServer: {{publicAlternativeNames: ['-----BEGIN RSA PRIVATE KEY----- {SECRET}']}}\n  "
            f"registry: {{type: platform}}",
            "looks like an inline private key",
        ),
        ("    nic: eth0", f"    nic: eth0\n    kubeOvn2: {{apiKey: {SECRET}}}", "literal secrets are refused"),
    ],
)
def test_secrets_anywhere_are_refused_and_never_echoed(tmp_path: Path, find: str, replace: str, words: str) -> None:
    plan = tmp_path / "plan.yaml"
    assert find in BASE
    plan.write_text(BASE.replace(find, replace, 1))
    result = acpcheck("run", "--plan", str(plan), "--profile", "plan", "--out", str(tmp_path / "out"))
    assert result.returncode == 4
    output = clean(result)
    assert words in output and SECRET not in output
    line = next(n for n, text in enumerate(plan.read_text().splitlines(), 1) if SECRET in text)
    assert any(row.startswith(f"{plan}:{line}: ") for row in output.splitlines()), output


LOOPBACK = (
    BASE.replace("port: 22", "port: 9\n    connectTimeoutSeconds: 2")
    .replace("ipv4: 192.0.2.1", "sshHost: 127.0.0.1, ipv4: 192.0.2.1")
    .replace("ipv4: 192.0.2.2", "sshHost: 127.0.0.1, ipv4: 192.0.2.2")
)


@pytest.mark.parametrize(
    ("auth", "words", "shown"),
    [
        (
            "{passwordEnv: ACPCHECK_TEST_UNSET_PASSWORD}",
            "environment variable ACPCHECK_TEST_UNSET_PASSWORD is not set",
            True,
        ),
        (
            f"{{passwordEnv: {SECRET.replace('-', '_')}}}",
            "its name is not shown because it does not look like one",
            False,
        ),
        (f"{{privateKeyFile: /nonexistent/{SECRET}}}", "no such file (the path is not shown", False),
        (f"{{passwordFile: ./{SECRET}.txt}}", "no such file (the path is not shown", False),
    ],
)
def test_unresolvable_secret_references_are_bad_input_reported_once(
    tmp_path: Path, auth: str, words: str, shown: bool
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(LOOPBACK.replace("auth: {privateKeyFile: ~/.ssh/id_ed25519}", f"auth: {auth}"))
    result = acpcheck("run", "--plan", str(plan), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 4, clean(result)
    output = clean(result)
    assert output.count(words) == 1  # once, not once per check and node
    line = next(n for n, text in enumerate(plan.read_text().splitlines(), 1) if "auth:" in text)
    assert f"{plan}:{line}: spec.ssh.auth." in output
    assert (SECRET in output or SECRET.replace("-", "_") in output) is False or shown
    assert not (tmp_path / "out").exists()
    # A plan-only run needs no secret: nothing is resolved, nothing refused.
    assert (
        acpcheck("run", "--plan", str(plan), "--profile", "plan", "--out", str(tmp_path / "plan-only")).returncode == 0
    )


def test_profile_params_are_validated_and_overrides_name_known_checks(tmp_path: Path) -> None:
    profile = tmp_path / "team.yaml"
    profile.write_text(
        "name: team\nextends: plan\nparams: {defaultMaxPods: -5}\noverrides: {ACP-NET-999: {severity: high}}\n"
    )
    result = acpcheck("run", "--plan", str(GOOD), "--profile", str(profile), "--out", str(tmp_path / "out"))
    assert result.returncode == 4
    output = clean(result)
    assert f"{profile}:3: params.defaultMaxPods: Input should be greater than or equal to 1" in output
    assert f"{profile}:4: overrides.ACP-NET-999: no check has this id" in output
    profile.write_text("name: team\nextends: plan\nparams: {defaultMaxPods: 250}\n")
    assert (
        acpcheck("run", "--plan", str(GOOD), "--profile", str(profile), "--out", str(tmp_path / "ok")).returncode == 0
    )
