"""ACP-ENC-* on real parts: the ``encryption`` lab scenario's control-plane nodes (real sshd,
real files with real modes and owners), Debian's etcd with client TLS on cp1's loopback
holding values written as kube-apiserver writes them, and the test API server serving the
EtcdEncryptionConfig. Every rule PASSes and FAILs here as the lab is changed between runs
(over SSH, through the API, in etcd); an unreachable etcd, a wrong client certificate and a
forbidden API call each give ERROR with the reason; and no key, secret value or kubeconfig
credential reaches any output file or terminal line (canaries).

One lab, one story: the runs are steps of one test, because each step changes the lab
(under pytest-xdist, separate tests of a module may run on different workers)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck_lab import LabInfo, down, up
from acpcheck_lab import etcd as lab_etcd

pytestmark = pytest.mark.skipif(
    not os.path.exists(lab_etcd.ETCD_BIN),
    reason="etcd is missing (apt-get install etcd-server, or scripts/setup-system.sh)",
)
EEC = ("cluster.alauda.io", "v1alpha1", "etcdencryptionconfigs")
CPS = ("cp1", "cp2", "cp3")


@pytest.fixture(scope="module")
def lab(lab_machine: Path) -> Iterator[LabInfo]:
    info = up("encryption", lab_machine)
    try:
        yield info
    finally:
        down(lab_machine, purge=True)


def acpcheck_run(lab: LabInfo, out: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "acpcheck",
        "run",
        "--plan",
        str(lab.plan_file),
        "--profile",
        "upgrade",
        "--out",
        str(out),
        *args,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **lab.env(), **(env or {})},
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert (out / "results.json").exists(), done.stdout + done.stderr
    document = json.loads((out / "results.json").read_text())
    document["exit"], document["terminal"] = done.returncode, done.stdout + done.stderr
    return document


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {
        f"{r['check']} {r['target'].split(':', 1)[1] if r['target'].startswith('node:') else 'cluster'}": r["status"]
        for r in document["results"]
    }


def message(document: dict[str, Any], check: str, target: str = "cluster") -> str:
    return next(
        r["message"]
        for r in document["results"]
        if r["check"] == check and (target == "cluster" or r["target"] == f"node:{target}")
    )


def expect(cluster: dict[str, str], **per_node: dict[str, str] | str) -> dict[str, str]:
    """{"ACP-ENC-00n cluster": status} and per-node checks: check -> status for cp1..3, or {node: status}."""
    table = {f"{check} cluster": status for check, status in cluster.items()}
    for check, value in per_node.items():
        check = check.replace("_", "-")
        if check == "ACP-ENC-012":
            table[f"{check} *"] = value  # type: ignore[assignment]
        else:
            for node in CPS:
                table[f"{check} {node}"] = value if isinstance(value, str) else value.get(node, "pass")
    return table


def ssh(lab: LabInfo, node: str, command: str, stdin: str = "") -> str:
    done = subprocess.run(
        ["ssh", "-F", str(lab.paths.ssh_config), "-o", "BatchMode=yes", node, command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def kube(lab: LabInfo, user: str = "admin") -> Any:
    from kubernetes import client, config

    return client.CustomObjectsApi(
        config.new_client_from_config(config_file=str(lab.state_dir / "apiserver" / f"{user}.kubeconfig"))
    )


def canaries(lab: LabInfo) -> dict[str, bytes]:
    """Every secret of this lab that acpcheck reads or could read: the encryption keys (base64
    and raw), the secret values in etcd (as written and base64), the etcd client key, and the
    kubeconfigs' tokens and client keys."""
    material = lab_etcd.Material.load(lab.state_dir / "controlplane")
    found: dict[str, bytes] = {}
    for name, value in {**material.keys, **material.retired, **material.other, **material.extra}.items():
        found[f"key {name}"] = value.encode()
        found[f"key {name} raw"] = base64.b64decode(value)
    for index, value in enumerate(material.canaries):
        found[f"secret value {index}"] = value.encode()
        found[f"secret value {index} base64"] = base64.b64encode(value.encode())
    for line in (lab.state_dir / "controlplane" / "client.key").read_text().splitlines():
        if len(line) > 30:
            found["etcd client key"] = line.encode()
    for path in (lab.state_dir / "apiserver").glob("*.kubeconfig"):
        user = yaml.safe_load(path.read_text())["users"][0]["user"]
        for field in ("token", "client-key-data"):
            if field in user:
                found[f"{path.stem} {field}"] = user[field].encode()
    return found


def assert_no_secret(lab: LabInfo, runs: list[tuple[Path, dict[str, Any]]]) -> None:
    secrets = canaries(lab)
    leaks = []
    for out, document in runs:
        texts = [(f"{out.name} terminal", document["terminal"].encode())]
        texts += [
            (str(path.relative_to(out.parent)), path.read_bytes()) for path in sorted(out.rglob("*")) if path.is_file()
        ]
        leaks += [f"{what} in {where}" for where, data in texts for what, secret in secrets.items() if secret in data]
    assert not leaks, leaks
    assert len(secrets) >= 20  # the canaries exist: 30 keys, 5 values, client keys, tokens


def test_encryption_status_config_and_etcd_on_real_parts(lab: LabInfo, tmp_path: Path) -> None:
    material = lab_etcd.Material.load(lab.state_dir / "controlplane")
    runs = []

    # 1. As built: the status says Success everywhere; cp3's config puts identity first and
    # is world-readable; etcd holds plain-text secrets in team-a and team-b.
    first = acpcheck_run(lab, tmp_path / "1-as-built", "--check", "area:ENC")
    runs.append((tmp_path / "1-as-built", first))
    assert statuses(first) == expect(
        {f"ACP-ENC-00{n}": "pass" for n in range(1, 8)} | {"ACP-ENC-013": "fail"},
        ACP_ENC_008="pass",
        ACP_ENC_009={"cp3": "fail"},
        ACP_ENC_010={"cp3": "fail"},
        ACP_ENC_011="pass",
        ACP_ENC_012="fail",
    ), first["terminal"]
    etcd = message(first, "ACP-ENC-013")
    assert etcd.startswith(
        "etcd holds 7 of 60 objects not encrypted with a key of cp1's config (read from cp1 via https://127.0.0.1:2379"
    )
    assert (
        "secrets: 4 plaintext, 1 identity, 1 unknown-key of 38 (written now as aesgcm:key-3) — per "
        "namespace: team-a: 3 plaintext; "
        "team-b: 1 plaintext, 1 identity; cpaas-system: 1 unknown-key"
    ) in etcd
    assert (
        "configmaps: 1 plaintext of 22 (written now as aesgcm:key-3) — per namespace: kube-system: 1 plaintext" in etcd
    )
    assert "secrets: 2 of 38 under an older key of the config" in etcd
    evidence = next(r for r in first["results"] if r["check"] == "ACP-ENC-013")["evidence"]
    assert evidence["resources"]["secrets"]["namespaces"]["team-a"] == {"plaintext": 3}
    assert "identity is the first provider" in message(first, "ACP-ENC-010", "cp3") and "mode 0644" in message(
        first, "ACP-ENC-009", "cp3"
    )
    assert first["exit"] == 1

    # The same evidence replayed offline gives the same results.
    replayed = acpcheck_run(
        lab, tmp_path / "1-replayed", "--check", "area:ENC", "--facts", str(tmp_path / "1-as-built" / "facts")
    )
    assert statuses(replayed) == statuses(first) and message(replayed, "ACP-ENC-013") == etcd

    # 2. Repaired files and data, a troubled controller: every node gets the same config
    # (ten keys, 0600 root), etcd is re-encrypted under the current key; the status shows a
    # failed node, a failed migration, an old rotation and configmaps dropped from the spec.
    lab_etcd.node_command(lab.state_dir, lab.node("cp1").netns, "migrate")
    ten_keys = lab_etcd.encryption_config("ten-keys", material.keys, material.other, material.extra)
    for node in CPS:
        ssh(
            lab,
            node,
            f"cat > {lab_etcd.CONFIG} && chown root:root {lab_etcd.CONFIG} && chmod 600 {lab_etcd.CONFIG}",
            stdin=ten_keys,
        )
    cp3 = lab.node("cp3").ipv4
    api = kube(lab)
    api.patch_cluster_custom_object(*EEC, "default", {"spec": {"resources": ["secrets"]}})
    api.patch_cluster_custom_object_status(
        *EEC,
        "default",
        {
            "status": {
                "deployStatus": {
                    cp3: {
                        "revision": 2,
                        "state": "UpdateFailed",
                        "message": "write /etc/kubernetes/encryption-provider.conf: no space left on device",
                    }
                },
                "migration": {
                    "state": "Failed",
                    "message": "etcdserver: request timed out",
                    "completeTimestamp": "2026-01-01T00:00:00Z",
                },
            }
        },
    )
    second = acpcheck_run(lab, tmp_path / "2-repaired", "--check", "area:ENC")
    runs.append((tmp_path / "2-repaired", second))
    assert statuses(second) == expect(
        {
            "ACP-ENC-001": "pass",
            "ACP-ENC-002": "pass",
            "ACP-ENC-003": "fail",
            "ACP-ENC-004": "fail",
            "ACP-ENC-005": "fail",
            "ACP-ENC-006": "fail",
            "ACP-ENC-007": "fail",
            "ACP-ENC-013": "pass",
        },
        ACP_ENC_008="pass",
        ACP_ENC_009="pass",
        ACP_ENC_010="pass",
        ACP_ENC_011="warn",
        ACP_ENC_012="pass",
    ), second["terminal"]
    assert (
        f"cp3 ({cp3}) is UpdateFailed: write /etc/kubernetes/encryption-provider.conf: no space left on device"
        in message(second, "ACP-ENC-005")
    )
    assert "migration of revision 3 is Failed" in message(second, "ACP-ENC-006") and "overdue by" in message(
        second, "ACP-ENC-007"
    )
    assert "10 keys retained" in message(second, "ACP-ENC-011", "cp1")

    # 3. Broken access: cp2's kube-apiserver loses its encryption flag, cp1 presents an etcd
    # client certificate from a CA etcd does not trust (cp2 and cp3 run no etcd: unreachable),
    # and EtcdEncryptionConfig default is deleted.
    ssh(lab, "cp2", f"sed -i '/--encryption-provider-config/d' {lab_etcd.MANIFEST}")
    controlplane = lab.state_dir / "controlplane"
    for suffix in ("crt", "key"):
        ssh(
            lab,
            "cp1",
            f"cat > {lab_etcd.PKI}/apiserver-etcd-client.{suffix}",
            stdin=(controlplane / f"rogue-client.{suffix}").read_text(),
        )
    api.delete_cluster_custom_object(*EEC, "default")
    third = acpcheck_run(lab, tmp_path / "3-broken", "--check", "area:ENC")
    runs.append((tmp_path / "3-broken", third))
    assert statuses(third) == expect(
        {"ACP-ENC-001": "fail", **{f"ACP-ENC-00{n}": "error" for n in range(2, 8)}, "ACP-ENC-013": "error"},
        ACP_ENC_008={"cp2": "fail"},
        ACP_ENC_009={"cp2": "skip"},
        ACP_ENC_010={"cp2": "skip"},
        ACP_ENC_011={"cp1": "warn", "cp2": "skip", "cp3": "warn"},
        ACP_ENC_012="fail",
    ), third["terminal"]
    assert "the etcd Encryption Manager's CRD is there, but EtcdEncryptionConfig default is not" in message(
        third, "ACP-ENC-001"
    )
    assert message(third, "ACP-ENC-004").startswith(
        "could not check: absent: the cluster has no EtcdEncryptionConfig named default"
    )
    unreadable = message(third, "ACP-ENC-013")
    assert "cp1: https://127.0.0.1:2379: etcd refused the client certificate of --etcd-certfile" in unreadable, (
        unreadable
    )
    assert "the node could not connect to 127.0.0.1:2379" in unreadable, unreadable  # cp2, cp3: no etcd listens there

    # 4. A kubeconfig whose user may not read EtcdEncryptionConfigs: ERROR naming verb and resource.
    kubeconfig = str(lab.state_dir / "apiserver" / "no-eec-reader.kubeconfig")
    fourth = acpcheck_run(
        lab, tmp_path / "4-forbidden", "--check", "ACP-ENC-00[1-7]", env={"ACPCHECK_KUBECONFIG": kubeconfig}
    )
    runs.append((tmp_path / "4-forbidden", fourth))
    assert set(statuses(fourth).values()) == {"error"}
    assert message(fourth, "ACP-ENC-002").startswith(
        "could not check: forbidden: kubeconfig user 'no-eec-reader' may not get "
        'etcdencryptionconfigs.cluster.alauda.io "default" '
        '(403 Forbidden: etcdencryptionconfigs.cluster.alauda.io "default" is forbidden: User '
        '"no-eec-reader" cannot get resource'
    )

    # 5. The plugin uninstalled (its CRD deleted): the resource type is not served.
    from kubernetes import client, config

    client.ApiextensionsV1Api(
        config.new_client_from_config(config_file=str(lab.state_dir / "apiserver" / "admin.kubeconfig"))
    ).delete_custom_resource_definition("etcdencryptionconfigs.cluster.alauda.io")
    fifth = acpcheck_run(lab, tmp_path / "5-uninstalled", "--check", "ACP-ENC-00[1-7]")
    runs.append((tmp_path / "5-uninstalled", fifth))
    assert statuses(fifth) == {
        "ACP-ENC-001 cluster": "fail",
        **{f"ACP-ENC-00{n} cluster": "error" for n in range(2, 8)},
    }
    assert (
        "does not serve etcdencryptionconfigs.cluster.alauda.io: the etcd Encryption Manager plugin is not installed"
        in message(fifth, "ACP-ENC-001")
    )
    assert message(fifth, "ACP-ENC-003").startswith("could not check: not-served:")

    assert_no_secret(lab, runs)


def test_lab_values_are_what_kube_apiserver_writes() -> None:
    """An etcd value of the lab decrypts with the config's key, the etcd key as AAD, to the
    protobuf storage encoding (k8s\\x00 + runtime.Unknown{v1 Secret}). No lab needed."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    material = lab_etcd.Material.create()
    stored = next(lab_etcd.realistic_objects(material.canaries))
    value = material.value(stored)
    prefix = b"k8s:enc:aesgcm:v1:key-3:"
    assert value.startswith(prefix)
    nonce, sealed = value[len(prefix) : len(prefix) + 12], value[len(prefix) + 12 :]
    plain = AESGCM(base64.b64decode(material.keys["key-3"])).decrypt(nonce, sealed, stored.key)
    assert plain.startswith(b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret") and stored.key == b"/registry/secrets/default/app-1"
