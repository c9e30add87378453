"""The test API server (lab/acpcheck_lab/apiserver.py) behaves like kube-apiserver where acpcheck
and its tests rely on it: real TLS, client-certificate and token auth with real 401/403,
discovery, get/list/create/update/patch/delete with resourceVersion, 404/409/422, the
status subresource, and objects that validate against the Kubernetes OpenAPI schema of the
version it claims (kubernetes-validate) and custom resources against their CRD. The
official client drives it unchanged, and so does kubectl where it is installed. No root."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from acpcheck_lab.apiserver import (
    BANNER,
    ApiError,
    ServerDir,
    TestApiServer,
    init_server_dir,
    json_patch,
    label_selector,
    merge_patch,
    serve_dir,
    shipped_crds,
    strategic_merge_patch,
)

VERSION = "1.34"
EEC = ("cluster.alauda.io", "v1alpha1", "etcdencryptionconfigs")
SEED = """
apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Node
metadata: {name: cp1, labels: {node-role.kubernetes.io/control-plane: ""}}
status: {addresses: [{type: InternalIP, address: 198.18.0.11}, {type: Hostname, address: cp1}]}
---
apiVersion: cluster.alauda.io/v1alpha1
kind: EtcdEncryptionConfig
metadata: {name: default}
spec: {resources: [secrets, configmaps], rotationInterval: 168h0m0s, type: aesgcm}
status:
  revision: 3
  deployStatus: {198.18.0.11: {revision: 3, state: Success, message: ""}}
  migration: {revision: 3, state: Success, message: "", resources: [secrets, configmaps],
    completeTimestamp: "2026-01-01T00:00:00Z"}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestApiServer, ServerDir]]:
    root = tmp_path_factory.mktemp("apiserver")
    seed = root / "seed.yaml"
    seed.write_text(SEED)
    server_dir = init_server_dir(root / "dir", port=0)
    server = serve_dir(server_dir.root, listen="127.0.0.1:0", seeds=[seed])
    yield server, server_dir
    server.stop()


def api(served: tuple[TestApiServer, ServerDir], user: str = "admin") -> client.ApiClient:
    return config.new_client_from_config(config_file=str(served[1].kubeconfig(user)))


def raw(
    served: tuple[TestApiServer, ServerDir], path: str, token: str | None = None, method: str = "GET"
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A request with urllib (TLS verified against the server's CA), optionally with a bearer token."""
    server, server_dir = served
    context = ssl.create_default_context(cafile=str(server_dir.ca))
    request = urllib.request.Request(
        server.url + path, method=method, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def token_of(served: tuple[TestApiServer, ServerDir], user: str) -> str:
    return next(u.token for u in served[1].users() if u.name == user)  # type: ignore[return-value]


# -- identity -----------------------------------------------------------------------------


def test_it_says_it_is_a_test_server_everywhere(served: tuple[TestApiServer, ServerDir]) -> None:
    status, version, headers = raw(served, "/version", token_of(served, "acpcheck-reader"))
    assert (
        status == 200
        and version["gitVersion"] == "v1.34.5+acpcheck-test-apiserver"
        and "Python" in version["goVersion"]
    )
    assert headers["Server"].startswith("acpcheck-test-apiserver") and headers["X-Acpcheck-Test-Apiserver"] == "true"
    assert "not a Kubernetes API server" in BANNER
    assert "test API server" in served[1].kubeconfig("admin").read_text().splitlines()[0]


# -- authentication and authorization ---------------------------------------------------------


def test_no_credentials_or_a_wrong_token_is_401(served: tuple[TestApiServer, ServerDir]) -> None:
    for token in (None, "not-a-token"):
        status, body, _ = raw(served, "/api/v1/nodes", token)
        assert (status, body["reason"], body["kind"]) == (401, "Unauthorized", "Status")


def test_client_certificate_and_token_users_are_told_apart(served: tuple[TestApiServer, ServerDir]) -> None:
    nodes = client.CoreV1Api(api(served, "admin")).list_node()  # client certificate, O=system:masters
    assert [n.metadata.name for n in nodes.items] == ["cp1"]
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api(served, "no-eec-reader")).get_cluster_custom_object(*EEC, "default")
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert message == (
        'etcdencryptionconfigs.cluster.alauda.io "default" is forbidden: User "no-eec-reader" cannot get resource '
        '"etcdencryptionconfigs" in API group "cluster.alauda.io" at the cluster scope'
    )
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api(served, "no-node-reader")).list_node()
    assert (
        'cannot list resource "nodes" in API group "" at the cluster scope' in json.loads(refused.value.body)["message"]
    )


def test_tls_is_real(served: tuple[TestApiServer, ServerDir]) -> None:
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(served[0].url + "/version", context=ssl.create_default_context(), timeout=10)


# -- discovery ----------------------------------------------------------------------------


def test_discovery(served: tuple[TestApiServer, ServerDir]) -> None:
    admin = api(served)
    groups = {g.name: g.preferred_version.version for g in client.ApisApi(admin).get_api_versions().groups}
    assert groups == {
        "apiextensions.k8s.io": "v1",
        "cluster.alauda.io": "v1alpha1",
        "networking.k8s.io": "v1",
        # read by the upgrade-readiness checks (ACP-UPG-*): built-in types and the lab's CRDs
        "apps": "v1",
        "batch": "v1",
        "certificates.k8s.io": "v1",
        "config.cpaas.io": "v1",
        "enhancement.cluster.alauda.io": "v1",
        "platform.tkestack.io": "v1",
        # a hosted control plane's management cluster (ACP-HCP-004…006): its plugins' CRDs and MetalLB's
        "bootstrap.cluster.x-k8s.io": "v1beta1",
        "controlplane.cluster.x-k8s.io": "v1alpha2",  # the published KamajiControlPlane CRD serves v1alpha2 only
        "infrastructure.cluster.x-k8s.io": "v1beta1",
        "kamaji.clastix.io": "v1alpha1",
        "metallb.io": "v1beta1",
        # Cluster API's published Cluster CRD (issue 19, item 7)
        "cluster.x-k8s.io": "v1beta1",
    }
    scopes = {
        (group, r.name): (r.kind, r.namespaced)
        for group in ("apps", "batch", "certificates.k8s.io")
        for r in client.CustomObjectsApi(admin).get_api_resources(group, "v1").resources
    }
    assert scopes[("apps", "daemonsets")] == ("DaemonSet", True)
    assert scopes[("batch", "cronjobs")] == ("CronJob", True)
    assert scopes[("certificates.k8s.io", "certificatesigningrequests")] == ("CertificateSigningRequest", False)
    core = {r.name for r in client.CoreV1Api(admin).get_api_resources().resources}
    assert {"namespaces", "nodes", "nodes/status", "secrets", "configmaps", "services", "services/status"} <= core
    eec = client.CustomObjectsApi(admin).get_api_resources(*EEC[:2]).resources
    assert [(r.name, r.kind, r.namespaced, r.short_names) for r in eec][0] == (
        "etcdencryptionconfigs",
        "EtcdEncryptionConfig",
        False,
        ["eec"],
    )
    status, body, _ = raw(served, "/apis/not.a.group/v1", token_of(served, "acpcheck-reader"))
    assert status == 404


# -- objects ------------------------------------------------------------------------------


def test_secret_lifecycle_with_the_official_client(served: tuple[TestApiServer, ServerDir]) -> None:
    core = client.CoreV1Api(api(served))
    body = {"metadata": {"name": "db", "labels": {"app": "db"}}, "stringData": {"password": "s3cret"}}
    created = core.create_namespaced_secret("team-a", body)
    assert created.data == {"password": "czNjcmV0"} and created.type == "Opaque" and created.metadata.resource_version
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_secret("team-a", body)
    assert (exists.value.status, json.loads(exists.value.body)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as no_namespace:
        core.create_namespaced_secret("nowhere", body)
    assert json.loads(no_namespace.value.body)["message"] == 'namespaces "nowhere" not found'
    patched = core.patch_namespaced_secret(
        "db", "team-a", {"metadata": {"labels": {"tier": "data"}}}
    )  # strategic merge
    assert patched.metadata.labels == {"app": "db", "tier": "data"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    stale = client.V1Secret(
        metadata=client.V1ObjectMeta(name="db", resource_version=created.metadata.resource_version), data={}
    )
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_secret("db", "team-a", stale)
    assert conflict.value.status == 409 and "the object has been modified" in json.loads(conflict.value.body)["message"]
    assert [s.metadata.name for s in core.list_namespaced_secret("team-a", label_selector="app=db").items] == ["db"]
    assert core.list_namespaced_secret("team-a", label_selector="app!=db").items == []
    assert [s.metadata.name for s in core.list_secret_for_all_namespaces(field_selector="metadata.name=db").items] == [
        "db"
    ]
    core.delete_namespaced_secret("db", "team-a")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_secret("db", "team-a")
    assert gone.value.status == 404 and json.loads(gone.value.body)["message"] == 'secrets "db" not found'


def test_lists_page_with_limit_and_continue(served: tuple[TestApiServer, ServerDir]) -> None:
    core = client.CoreV1Api(api(served))
    for index in range(7):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"page-{index}"}, "data": {"i": str(index)}})
    names, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map("default", limit=3, _continue=token)
        names += [c.metadata.name for c in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert (names, pages) == ([f"page-{i}" for i in range(7)], 3)
    core.delete_collection_namespaced_config_map("default")
    assert core.list_namespaced_config_map("default").items == []


def test_custom_resource_status_subresource_validation_and_pruning(served: tuple[TestApiServer, ServerDir]) -> None:
    custom = client.CustomObjectsApi(api(served))
    eec = custom.get_cluster_custom_object(*EEC, "default")
    assert eec["status"]["deployStatus"]["198.18.0.11"]["state"] == "Success"
    # the main resource cannot change the status, only /status can
    custom.patch_cluster_custom_object(*EEC, "default", {"status": {"revision": 99}})
    assert custom.get_cluster_custom_object(*EEC, "default")["status"]["revision"] == 3
    changed = custom.patch_cluster_custom_object_status(
        *EEC, "default", {"status": {"migration": {"state": "Processing"}}}
    )
    assert changed["status"]["migration"]["state"] == "Processing" and changed["status"]["migration"]["revision"] == 3
    with pytest.raises(ApiException) as invalid:  # the CRD's enum: aesgcm only
        custom.patch_cluster_custom_object(*EEC, "default", {"spec": {"type": "aescbc"}})
    assert invalid.value.status == 422 and "spec.type" in json.loads(invalid.value.body)["message"]
    pruned = custom.patch_cluster_custom_object(*EEC, "default", {"spec": {"unknownField": 1}})
    assert (
        "unknownField" not in pruned["spec"] and pruned["metadata"]["generation"] == 1
    )  # nothing that is kept changed
    store = served[0].store
    with pytest.raises(ApiError) as no_strategic:  # as for any custom resource: no strategic merge patch
        store.patch(store.find(*EEC), None, "default", "application/strategic-merge-patch+json", {}, None)  # type: ignore[arg-type]
    assert (no_strategic.value.code, no_strategic.value.reason) == (415, "UnsupportedMediaType")
    custom.patch_cluster_custom_object_status(*EEC, "default", {"status": {"migration": {"state": "Success"}}})


def test_a_crd_created_is_served_and_deleting_it_unserves_it(served: tuple[TestApiServer, ServerDir]) -> None:
    admin = api(served)
    extensions = client.ApiextensionsV1Api(admin)
    crd = yaml.safe_load(
        yaml.safe_dump(
            next(c for c in shipped_crds() if c["metadata"]["name"] == "etcdencryptionconfigs.cluster.alauda.io")
        )
        .replace("etcdencryptionconfig", "widget")
        .replace("EtcdEncryptionConfig", "Widget")
        .replace("eec", "wdg")
    )
    crd["metadata"]["name"] = "widgets.cluster.alauda.io"
    extensions.create_custom_resource_definition(crd)
    custom = client.CustomObjectsApi(admin)
    custom.create_cluster_custom_object(
        "cluster.alauda.io",
        "v1alpha1",
        "widgets",
        {
            "apiVersion": "cluster.alauda.io/v1alpha1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"resources": [], "rotationInterval": "1h", "type": "aesgcm"},
        },
    )
    assert len(custom.list_cluster_custom_object("cluster.alauda.io", "v1alpha1", "widgets")["items"]) == 1
    extensions.delete_custom_resource_definition("widgets.cluster.alauda.io")
    with pytest.raises(ApiException) as gone:
        custom.list_cluster_custom_object("cluster.alauda.io", "v1alpha1", "widgets")
    assert gone.value.status == 404


def test_watch_is_refused_not_faked(served: tuple[TestApiServer, ServerDir]) -> None:
    status, body, _ = raw(served, "/api/v1/nodes?watch=true", token_of(served, "acpcheck-reader"))
    assert (status, body["reason"]) == (
        405,
        "MethodNotAllowed",
    ) and "not supported by the acpcheck test API server" in body["message"]


# -- patch semantics ------------------------------------------------------------------------


def test_merge_strategic_and_json_patch() -> None:
    node = {
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "a"}]},
        "spec": {"podCIDRs": ["10.1.0.0/24"]},
    }
    keys = {"status.addresses": "type", "spec.podCIDRs": ""}
    merged = strategic_merge_patch(
        node,
        {
            "status": {
                "addresses": [{"type": "Hostname", "address": "b"}, {"type": "ExternalIP", "address": "1.2.3.4"}]
            },
            "spec": {"podCIDRs": ["10.2.0.0/24"]},
        },
        keys,
    )
    assert merged["status"]["addresses"] == [
        {"type": "InternalIP", "address": "10.0.0.1"},
        {"type": "Hostname", "address": "b"},
        {"type": "ExternalIP", "address": "1.2.3.4"},
    ]
    assert merged["spec"]["podCIDRs"] == ["10.1.0.0/24", "10.2.0.0/24"]
    deleted = strategic_merge_patch(node, {"status": {"addresses": [{"type": "Hostname", "$patch": "delete"}]}}, keys)
    assert deleted["status"]["addresses"] == [{"type": "InternalIP", "address": "10.0.0.1"}]
    assert merge_patch(node, {"status": {"addresses": [{"type": "X"}]}, "spec": None}) == {
        "status": {"addresses": [{"type": "X"}]}
    }
    assert json_patch(
        {"a": [1, 2]},
        [
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/a/0", "value": 0},
            {"op": "test", "path": "/a/1", "value": 2},
        ],
    ) == {"a": [0, 2, 3]}
    assert label_selector("app in (db, web),!legacy,tier")({"metadata": {"labels": {"app": "web", "tier": "x"}}})


# -- what it serves is valid Kubernetes --------------------------------------------------------


def test_every_object_it_serves_validates_against_kubernetes_and_crd_schemas(
    served: tuple[TestApiServer, ServerDir],
) -> None:
    admin = api(served)
    core, networking, custom = client.CoreV1Api(admin), client.NetworkingV1Api(admin), client.CustomObjectsApi(admin)
    core.create_namespaced_service(
        "default",
        {
            "metadata": {"name": "registry"},
            "spec": {"ports": [{"port": 443, "targetPort": 60080}], "selector": {"c": "r"}},
        },
    )
    networking.create_namespaced_ingress(
        "default",
        {
            "metadata": {"name": "registry"},
            "spec": {
                "rules": [
                    {
                        "host": "r.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/v2/",
                                    "pathType": "ImplementationSpecific",
                                    "backend": {"service": {"name": "registry", "port": {"number": 443}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
    )
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "data": {"k": "dg=="}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"k": "v"}})
    served_objects = []
    for path, kind in (
        ("/api/v1/namespaces", "Namespace"),
        ("/api/v1/nodes", "Node"),
        ("/api/v1/secrets", "Secret"),
        ("/api/v1/configmaps", "ConfigMap"),
        ("/api/v1/services", "Service"),
        ("/apis/networking.k8s.io/v1/ingresses", "Ingress"),
    ):
        status, body, _ = raw(served, path, token_of(served, "acpcheck-reader"))
        assert status == 200
        for item in body["items"]:
            served_objects.append({"apiVersion": body["apiVersion"], "kind": kind, **item})
    assert {obj["kind"] for obj in served_objects} == {"Namespace", "Node", "Secret", "ConfigMap", "Service", "Ingress"}
    for obj in served_objects:
        kubernetes_validate.validate(obj, VERSION, strict=True)  # raises with the offending field
    schema = next(c for c in shipped_crds() if c["metadata"]["name"] == "etcdencryptionconfigs.cluster.alauda.io")[
        "spec"
    ]["versions"][0]["schema"]["openAPIV3Schema"]
    eec = custom.get_cluster_custom_object(*EEC, "default")
    jsonschema.Draft7Validator(
        {**schema, "properties": {**schema["properties"], "metadata": {"type": "object"}}}
    ).validate(eec)
    for name in ("registry",):
        core.delete_namespaced_service(name, "default")
        networking.delete_namespaced_ingress(name, "default")


# -- kubectl, where installed ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (Debian does not package it)")
def test_kubectl_works_against_it_unchanged(served: tuple[TestApiServer, ServerDir], tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(served[1].kubeconfig("admin")), "HOME": str(tmp_path)}

    def kubectl(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            ["kubectl", *args], capture_output=True, text=True, env=env, input=stdin, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "v1.34.5+acpcheck-test-apiserver" in kubectl("version")
    assert "cp1" in kubectl("get", "nodes")
    assert "default" in kubectl("get", "eec")
    kubectl(
        "create",
        "-f",
        "-",
        stdin="apiVersion: v1\nkind: Secret\nmetadata: {name: kube, namespace: team-a}\nstringData: {a: b}\n",
    )
    kubectl("patch", "secret", "kube", "-n", "team-a", "-p", '{"metadata":{"labels":{"x":"y"}}}')
    assert "x=y" in kubectl("get", "secret", "kube", "-n", "team-a", "--show-labels")
    assert yaml.safe_load(kubectl("get", "secret", "kube", "-n", "team-a", "-o", "yaml"))["data"] == {"a": "Yg=="}
    kubectl("patch", "eec", "default", "--type", "merge", "--subresource", "status", "-p", '{"status":{"revision":3}}')
    kubectl("delete", "secret", "kube", "-n", "team-a")
