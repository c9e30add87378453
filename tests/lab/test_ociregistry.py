"""The lab's OCI registry (lab/acpcheck_lab/ociregistry.py) is a real one: Debian's
docker-registry in its own namespaces, serving TLS from the lab CA and asking for the
htpasswd (bcrypt) account; the seeded images answer manifest requests with their media
types; the expired and wrong-SAN instances really serve such certificates; and
``down`` leaves none of it behind."""

from __future__ import annotations

import base64
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from acpcheck_lab import LabInfo, down, up
from acpcheck_lab.host import lab_namespaces, lab_processes
from acpcheck_lab.ociregistry import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

ACCEPT = ", ".join(
    [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json"]
)


@pytest.fixture(scope="module")
def registry_lab(lab_machine: Path) -> Iterator[LabInfo]:
    info = up("private-registry", lab_machine)
    try:
        yield info
    finally:
        down(lab_machine, purge=True)


def registry_of(lab: LabInfo, plan: str = "") -> dict:
    path = lab.paths.root / "registry" / plan if plan else lab.plan_file
    return yaml.safe_load(path.read_text())["spec"]["registry"]


def get(url: str, context: ssl.SSLContext, auth: str | None = None, method: str = "GET") -> tuple[int, dict[str, str]]:
    headers = {"Accept": ACCEPT} | ({"Authorization": auth} if auth else {})
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers, method=method), context=context, timeout=5
        ) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def basic(lab: LabInfo, password_file: str = "password") -> str:
    registry = registry_of(lab)
    password = (lab.paths.root / "registry" / password_file).read_text().strip()
    return "Basic " + base64.b64encode(f"{registry['credential']['username']}:{password}".encode()).decode()


def test_the_registry_serves_tls_and_asks_for_the_account(registry_lab: LabInfo) -> None:
    registry = registry_of(registry_lab)
    assert registry["type"] == "private" and registry["address"].endswith(":5000")
    context = ssl.create_default_context(cafile=registry["caFile"])
    base = f"https://{registry['address']}/v2/"
    status, headers = get(base, context)
    assert status == 401 and headers["Www-Authenticate"].startswith("Basic realm=")
    assert get(base, context, basic(registry_lab))[0] == 200
    assert get(base, context, basic(registry_lab, "password-wrong"))[0] == 401
    # without the lab CA, the node's (this machine's) trust does not know the registry
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        get(base, ssl.create_default_context())


def test_seeded_images_answer_manifest_requests(registry_lab: LabInfo) -> None:
    registry = registry_of(registry_lab)
    context = ssl.create_default_context(cafile=registry["caFile"])
    auth = basic(registry_lab)
    base = f"https://{registry['address']}/v2"
    status, headers = get(f"{base}/acp/kube-apiserver/manifests/v1.34.5", context, auth, "HEAD")
    assert status == 200 and headers["Content-Type"] == DOCKER_MANIFEST
    assert headers["Docker-Content-Digest"].startswith("sha256:")
    status, headers = get(f"{base}/acp/pause/manifests/3.10", context, auth, "HEAD")
    assert status == 200 and headers["Content-Type"] == OCI_INDEX
    assert get(f"{base}/acp/coredns/manifests/v1.12.0", context, auth, "HEAD")[0] == 404


def test_the_expired_and_wrong_name_instances_serve_such_certificates(registry_lab: LabInfo) -> None:
    ca = registry_of(registry_lab)["caFile"]
    for plan, reason in (
        ("plan-expired.yaml", "certificate has expired"),
        ("plan-wrongsan.yaml", "IP address mismatch"),
    ):
        address = registry_of(registry_lab, plan)["address"]
        with pytest.raises(urllib.error.URLError, match=reason):
            get(f"https://{address}/v2/", ssl.create_default_context(cafile=ca))
    healthy = registry_of(registry_lab, "plan-healthy.yaml")
    assert healthy["credential"]["passwordFile"].endswith("/password")
    assert registry_of(registry_lab, "plan-wrong-password.yaml")["credential"]["passwordFile"].endswith(
        "password-wrong"
    )
    assert "acp/coredns:v1.12.0" not in healthy["images"]


def test_the_registry_is_in_its_own_namespaces_and_goes_with_the_lab(registry_lab: LabInfo, lab_machine: Path) -> None:
    """Last in this module: it takes the lab down itself (the fixture's own down is then a no-op)."""
    prefix = f"acplab{registry_lab.name}-"
    namespaces = [name for name in lab_namespaces(prefix) if name.startswith(f"{prefix}reg-")]
    assert sorted(namespaces) == sorted(f"{prefix}reg-{n}" for n in ("good", "expired", "wrongsan", "ext"))
    pids = subprocess.run(
        ["ip", "netns", "pids", f"{prefix}reg-good"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert any(b"docker-registry" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids)
    down(lab_machine, purge=True)
    assert not lab_namespaces(prefix)
    assert not lab_processes(prefix=prefix)
