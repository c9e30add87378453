"""acpcheck's Kubernetes API access (acpcheck/transport/kube.py, and the cluster source) against the test API server:
token, client-certificate and exec-plugin auth, TLS that the environment cannot loosen,
an ERROR with the reason for an unreachable, unauthorised or forbidden API and for a
resource type the cluster does not serve, credentials in no output, and the kubernetes
package imported only by runs that read a cluster. No root."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.cluster import (
    ETCD_ENCRYPTION_CONFIG,
    NODES,
    ClusterSource,
    ClusterView,
    gather_cluster,
)
from acpcheck.testing import load_plan_text
from acpcheck.transport.kube import kubeconfig_of
from acpcheck_lab.apiserver import ServerDir, TestApiServer, init_server_dir, serve_dir

ROOT = Path(__file__).resolve().parents[2]
PLAN = load_plan_text((ROOT / "examples" / "workload-kube-ovn.yaml").read_text())
SEED = """apiVersion: v1
kind: Node
metadata: {name: cp1, labels: {node-role.kubernetes.io/control-plane: ""}}
status: {addresses: [{type: InternalIP, address: 192.0.2.11}]}
---
apiVersion: cluster.alauda.io/v1alpha1
kind: EtcdEncryptionConfig
metadata: {name: default}
spec: {resources: [secrets, configmaps], rotationInterval: 168h0m0s, type: aesgcm}
"""


def start(root: Path, with_crds: bool = True) -> tuple[TestApiServer, ServerDir]:
    seed = root / "seed.yaml"
    seed.write_text(SEED if with_crds else SEED.split("---")[0])
    server_dir = init_server_dir(root / "dir", port=0)
    return serve_dir(server_dir.root, listen="127.0.0.1:0", seeds=[seed], with_crds=with_crds), server_dir


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestApiServer, ServerDir]]:
    server, server_dir = start(tmp_path_factory.mktemp("api"))
    yield server, server_dir
    server.stop()


def gather(kubeconfig: Path, **environ: str):  # noqa: ANN201
    return gather_cluster(PLAN, environ={"ACPCHECK_KUBECONFIG": str(kubeconfig), **environ})


def edited(source: Path, target: Path, edit) -> Path:  # noqa: ANN001
    document = yaml.safe_load(source.read_text())
    edit(document)
    target.write_text(yaml.safe_dump(document))
    return target


def secrets_of(server_dir: ServerDir) -> list[str]:
    """Every credential in the directory's kubeconfigs (tokens, client keys, base64 and PEM)."""
    import base64

    found = []
    for path in server_dir.root.glob("*.kubeconfig"):
        for user in yaml.safe_load(path.read_text())["users"]:
            entry = user["user"]
            if entry.get("token"):
                found.append(entry["token"])
            if entry.get("client-key-data"):
                found.append(entry["client-key-data"])
                found += [
                    line for line in base64.b64decode(entry["client-key-data"]).decode().splitlines() if len(line) > 20
                ]
    return found


# -- authentication ---------------------------------------------------------------------------


def test_token_and_client_certificate_users_read_the_cluster(served: tuple[TestApiServer, ServerDir]) -> None:
    for user, auth in (("acpcheck-reader", "token"), ("admin", "client-certificate")):
        evidence = gather(served[1].kubeconfig(user))
        assert evidence.failure is None and evidence.auth == auth, evidence.failure
        view = ClusterView(evidence)
        assert view.get(ETCD_ENCRYPTION_CONFIG)["spec"]["type"] == "aesgcm"
        assert [n["name"] for n in view.control_plane_nodes()] == ["cp1"]
        assert evidence.version["gitVersion"].endswith("+acpcheck-test-apiserver")


def test_exec_plugin_credentials(served: tuple[TestApiServer, ServerDir], tmp_path: Path) -> None:
    token = next(u.token for u in served[1].users() if u.name == "acpcheck-reader")
    plugin = tmp_path / "credential-plugin"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": token}}
    plugin.write_text(f"#!/bin/sh\nprintf '%s' '{json.dumps(credential)}'\n")
    plugin.chmod(0o755)

    def use_exec(document: dict) -> None:
        document["users"][0]["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": str(plugin),
                "interactiveMode": "Never",
            }
        }

    evidence = gather(edited(served[1].kubeconfig("acpcheck-reader"), tmp_path / "exec.kubeconfig", use_exec))
    assert evidence.failure is None and evidence.auth == "exec"
    assert token not in json.dumps(evidence.as_dict())
    plugin.write_text("#!/bin/sh\necho 'no credentials here' >&2\nexit 3\n")
    failed = gather(tmp_path / "exec.kubeconfig")
    assert (
        failed.failure is not None
        and failed.failure[0] == "auth"
        and "exec credential plugin" in failed.failure[1]
        and "no credentials here" in failed.failure[1]
    )


# -- failures: ERROR with the reason ------------------------------------------------------------


def test_wrong_token_is_an_auth_error(served: tuple[TestApiServer, ServerDir], tmp_path: Path) -> None:
    bad = edited(
        served[1].kubeconfig("acpcheck-reader"),
        tmp_path / "bad.kubeconfig",
        lambda d: d["users"][0]["user"].update(token="wrong-token-0123456789"),
    )
    evidence = gather(bad)
    assert evidence.failure is not None and evidence.failure[0] == "auth" and "401 Unauthorized" in evidence.failure[1]
    assert "wrong-token-0123456789" not in evidence.failure[1]
    with pytest.raises(TargetUnavailable) as error:
        ClusterSource().provide("cluster", evidence, PLAN, None)
    assert error.value.target == f"cluster:{PLAN.metadata.name}"


def test_unreachable_api(served: tuple[TestApiServer, ServerDir], tmp_path: Path) -> None:
    import socket

    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    closed = edited(
        served[1].kubeconfig("acpcheck-reader"),
        tmp_path / "closed.kubeconfig",
        lambda d: d["clusters"][0]["cluster"].update(server=f"https://127.0.0.1:{port}"),
    )
    evidence = gather(closed)
    assert evidence.failure == (
        "unreachable",
        f"cannot reach the Kubernetes API at https://127.0.0.1:{port}: connection refused (nothing listens there?)",
    )


def test_forbidden_names_the_verb_and_the_resource(served: tuple[TestApiServer, ServerDir]) -> None:
    evidence = gather(served[1].kubeconfig("no-eec-reader"))
    assert evidence.failure is None
    with pytest.raises(TargetUnavailable) as refused:
        ClusterView(evidence).get(ETCD_ENCRYPTION_CONFIG)
    assert refused.value.kind == "forbidden"
    assert refused.value.message.startswith(
        "kubeconfig user 'no-eec-reader' may not get etcdencryptionconfigs.cluster.alauda.io \"default\""
    )
    nodes = gather(served[1].kubeconfig("no-node-reader"))
    with pytest.raises(TargetUnavailable, match="may not list nodes"):
        ClusterView(nodes).items(NODES)


def test_a_resource_type_the_cluster_does_not_serve(tmp_path: Path) -> None:
    server, server_dir = start(tmp_path, with_crds=False)
    try:
        evidence = gather(server_dir.kubeconfig("acpcheck-reader"))
    finally:
        server.stop()
    view = ClusterView(evidence)
    assert view.served(ETCD_ENCRYPTION_CONFIG) is False
    with pytest.raises(TargetUnavailable) as missing:
        view.get(ETCD_ENCRYPTION_CONFIG)
    assert (
        missing.value.kind == "not-served"
        and "does not serve etcdencryptionconfigs.cluster.alauda.io/v1alpha1" in missing.value.message
    )


def test_tls_is_verified_and_the_environment_cannot_loosen_it(
    served: tuple[TestApiServer, ServerDir], tmp_path: Path
) -> None:
    no_ca = edited(
        served[1].kubeconfig("acpcheck-reader"),
        tmp_path / "no-ca.kubeconfig",
        lambda d: d["clusters"][0]["cluster"].pop("certificate-authority-data"),
    )
    bundle = str(served[1].ca)  # the server's own CA, offered only through the environment
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REQUESTS_CA_BUNDLE", bundle)
        env.setenv("CURL_CA_BUNDLE", bundle)
        evidence = gather(no_ca)
    assert evidence.failure is not None and evidence.failure[0] == "tls" and "the system's CAs" in evidence.failure[1]
    assert (
        "unknown CA: the server's certificate is not signed by a CA in the system's CAs" in evidence.failure[1]
    )  # the cause, not "SSLError"
    with pytest.MonkeyPatch.context() as env:  # and a bundle in the environment does not displace the kubeconfig's CA
        env.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
        env.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
        assert gather(served[1].kubeconfig("acpcheck-reader")).failure is None


def test_kubeconfig_problems_are_named_without_values(served: tuple[TestApiServer, ServerDir], tmp_path: Path) -> None:
    assert gather(tmp_path / "absent.kubeconfig").failure == (
        "config",
        f"kubeconfig {tmp_path / 'absent.kubeconfig'}: file not found",
    )
    wrong_context = gather_cluster(
        PLAN, environ={"ACPCHECK_KUBECONFIG": str(served[1].kubeconfig("admin")), "ACPCHECK_KUBECONTEXT": "prod"}
    )
    line = next(
        n
        for n, text in enumerate(served[1].kubeconfig("admin").read_text().splitlines(), 1)
        if text.startswith("contexts:")
    )
    assert wrong_context.failure == (
        "config",
        f"kubeconfig {served[1].kubeconfig('admin')}:{line}: contexts: there is no context 'prod' (the "
        "contexts: test-apiserver)",
    )
    basic = edited(
        served[1].kubeconfig("acpcheck-reader"),
        tmp_path / "basic.kubeconfig",
        lambda d: d["users"][0]["user"].update(username="u", password="hunter2-password"),
    )
    failure = gather(basic).failure
    assert failure is not None and "basic authentication" in failure[1] and "hunter2" not in failure[1]
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text(served[1].kubeconfig("acpcheck-reader").read_text().replace("users:", "users: [", 1))
    failure = gather(broken).failure
    assert failure is not None and "invalid YAML" in failure[1]
    assert not any(secret in failure[1] for secret in secrets_of(served[1]))
    assert kubeconfig_of(PLAN, environ={}) == (None, None)


def test_saved_evidence_replays_and_holds_no_credential(
    served: tuple[TestApiServer, ServerDir], tmp_path: Path
) -> None:
    source = ClusterSource()
    for user in ("admin", "acpcheck-reader", "no-eec-reader"):
        evidence = gather(served[1].kubeconfig(user))
        source.save(evidence, tmp_path / user)
        text = (tmp_path / user / "cluster.json").read_text()
        assert not [secret for secret in secrets_of(served[1]) if secret in text]
        assert source.load(tmp_path / user, PLAN).as_dict() == evidence.as_dict()


def test_runs_that_read_no_cluster_never_import_kubernetes() -> None:
    script = (
        "import sys\n"
        "from acpcheck.catalog import load_catalog\n"
        "from acpcheck.model.profile import load_profile\n"
        "from acpcheck.run.inputs import sources_needed\n"
        "from acpcheck.testing import load_plan_text\n"
        f"plan = load_plan_text(open({str(ROOT / 'examples' / 'workload-kube-ovn.yaml')!r}).read())\n"
        "load_catalog()\n"
        "needed = {p: sorted(e.name for e in sources_needed(plan, load_profile(p), [])) for p in ('plan', "
        "'preinstall')}\n"
        "print(needed, 'kubernetes' in sys.modules, 'acpcheck.sources.cluster' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    needed, kubernetes, _ = done.stdout.rsplit(" ", 2)
    assert "cluster" not in needed and "encryption" not in needed
    assert kubernetes == "False", done.stdout
