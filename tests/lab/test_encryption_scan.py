"""The etcd scan's parts that need no etcd: how a prefix is cut into tight sub-ranges, how
values are classified (kube-apiserver's prefixes, AES-GCM with the etcd key as
authenticated data), and which resources a config makes the scan read. No root."""

from __future__ import annotations

import base64
import os
from itertools import pairwise
from pathlib import Path

from acpcheck.sources.encryption import ConfigSummary, expectations_for, parse_config
from acpcheck.sources.encryption_scan import Classifier, Expectation, Provider, etcd_prefix, subranges
from acpcheck.transport.etcd import prefix_end
from acpcheck_lab import etcd as lab_etcd


def test_subranges_cover_the_prefix_exactly_and_in_order() -> None:
    prefix = b"/registry/secrets/"
    parts = subranges(prefix, [b"team-b", b"default", b"team-a", b"team-a"])
    assert parts[0][0] == prefix and parts[-1][1] == prefix_end(prefix)
    assert all(a[1] == b[0] for a, b in pairwise(parts))  # contiguous, no overlap
    assert (b"/registry/secrets/default0", b"/registry/secrets/team-a0") in parts and len(parts) == 4
    keys = [
        b"/registry/secrets/default/x",
        b"/registry/secrets/team-a/y",
        b"/registry/secrets/team-ab/z",
        b"/registry/secrets/zz/w",
    ]
    assert all(sum(start <= key < end for start, end in parts) == 1 for key in keys)
    assert subranges(prefix, []) == [(prefix, prefix_end(prefix))]


def test_every_value_kind_is_classified() -> None:
    material = lab_etcd.Material.create()
    providers = (
        Provider("aesgcm", tuple((name, base64.b64decode(v)) for name, v in material.keys.items())),
        Provider("identity"),
    )
    classifier = Classifier(Expectation("secrets", "/registry/secrets/", providers))
    seen = {}
    for stored in lab_etcd.realistic_objects(material.canaries):
        category, _ = classifier.classify(stored.key, material.value(stored))
        seen[stored.how] = seen.get(stored.how, set()) | {category}
    assert seen == {
        "current": {"encrypted"},
        "previous": {"stale-key"},
        "retired": {"unknown-key"},
        "plaintext": {"plaintext"},
        "identity": {"identity"},
    }
    forged = b"k8s:enc:aesgcm:v1:key-3:" + os.urandom(40)  # the current key's name, other key material
    assert classifier.classify(b"/registry/secrets/a/b", forged) == ("undecryptable", "aesgcm:key-3")
    moved = material.value(next(lab_etcd.realistic_objects(material.canaries)))
    assert (
        classifier.classify(b"/registry/secrets/other/name", moved)[0] == "undecryptable"
    )  # the etcd key is authenticated


def test_config_parsing_names_keys_but_keeps_them_out_of_the_summary() -> None:
    material = lab_etcd.Material.create()
    text = lab_etcd.encryption_config("current", material.keys, material.other, material.extra)
    summary = ConfigSummary("/etc/kubernetes/encryption-provider.conf")
    rules = parse_config(text, summary)
    assert summary.rules == [
        {
            "resources": ["secrets", "configmaps"],
            "providers": [{"type": "aesgcm", "keys": ["key-3", "key-2"]}, {"type": "identity", "keys": []}],
        }
    ]
    assert not any(secret in str(summary.as_dict()) for secret in material.keys.values())
    expectations, skipped = expectations_for(rules)
    assert [(e.resource, e.prefix, e.current) for e in expectations] == [
        ("secrets", "/registry/secrets/", "aesgcm:key-3"),
        ("configmaps", "/registry/configmaps/", "aesgcm:key-3"),
    ]
    broken = ConfigSummary("x")
    parse_config(lab_etcd.encryption_config("unparsable", material.keys, material.other, material.extra), broken)
    assert (
        broken.parse_error is not None
        and broken.parse_error.startswith("not valid YAML at line")
        and "secret" not in broken.parse_error
    )
    only_secrets, _ = expectations_for(
        parse_config(
            lab_etcd.encryption_config("no-configmaps", material.keys, material.other, material.extra),
            ConfigSummary("y"),
        )
    )
    assert [(e.resource, e.current) for e in only_secrets] == [("secrets", "aesgcm:key-3"), ("configmaps", "identity")]


def test_etcd_prefixes_of_resources() -> None:
    assert etcd_prefix("secrets") == "/registry/secrets/"
    assert etcd_prefix("ingresses.networking.k8s.io") == "/registry/ingress/"
    assert etcd_prefix("deployments.apps") == "/registry/deployments/"
    assert etcd_prefix("widgets.example.com") == "/registry/example.com/widgets/"


def test_the_lab_eec_states_are_valid_and_judged_as_their_names_say() -> None:
    """The EtcdEncryptionConfig states the lab's test API server can serve: valid against ACP's
    CRD, and each one fails exactly the status rules its name implies."""
    import datetime as dt

    import jsonschema
    import yaml

    from acpcheck.checks import encryption as enc
    from acpcheck.sources.cluster import ClusterEvidence, ClusterView, ReadResult
    from acpcheck.testing import load_plan_text, run_check
    from acpcheck_lab.apiserver import shipped_crds

    schema = next(c for c in shipped_crds() if c["metadata"]["name"] == "etcdencryptionconfigs.cluster.alauda.io")[
        "spec"
    ]["versions"][0]["schema"]["openAPIV3Schema"]
    document = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "workload-kube-ovn.yaml").read_text())
    document["spec"]["kubeconfig"] = "a-kubeconfig"  # live-cluster checks apply
    plan = load_plan_text(yaml.safe_dump(document))
    addresses = [str(n.ipv4) for n in plan.control_plane]
    now = dt.datetime.now(dt.UTC)
    failing = {
        "success": set(),
        "processing": {"ACP-ENC-004", "ACP-ENC-005"},
        "update-failed": {"ACP-ENC-004", "ACP-ENC-005"},
        "overdue": {"ACP-ENC-007"},
    }
    for state, expected in failing.items():
        obj = lab_etcd.eec_object(state, addresses, now)
        assert obj is not None
        jsonschema.Draft7Validator(schema).validate(obj)
        view = ClusterView(
            ClusterEvidence(
                "cluster:prod-east",
                observed_at=now.isoformat(),
                reads={"nodes": ReadResult("ok", items=[]), "etcdencryptionconfig": ReadResult("ok", object=obj)},
            )
        )
        checks = (enc.check_revisions, enc.check_nodes_deployed, enc.check_migration, enc.check_rotation)
        found = {
            result.check for result in (run_check(c, plan, cluster=view) for c in checks) if result.status == "fail"
        }
        assert found == expected, (state, found)
    assert lab_etcd.eec_object("absent", addresses, now) is None
    assert yaml.safe_dump(lab_etcd.eec_object("success", addresses, now))
