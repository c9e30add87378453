"""Plan loading: every schema problem reported at once, located, never echoing secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acpcheck.errors import InputError
from acpcheck.model.plan import load_plan, plan_json_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = (EXAMPLES / "workload-kube-ovn.yaml").read_text()


def problems_for(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_plan(path)
    return [str(p) for p in caught.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_loads(example: str) -> None:
    plan = load_plan(EXAMPLES / example)
    assert plan.metadata.name


def test_base_example_fields() -> None:
    plan = load_plan(EXAMPLES / "workload-kube-ovn.yaml")
    assert [str(c) for c in plan.spec.network.cluster_cidr] == ["10.3.0.0/16"]
    assert plan.control_plane[0].name == "cp1" and len(plan.control_plane) == 3
    assert plan.where("spec", "nodes", 2, "ipv4").endswith(f":{line_of(BASE, 'name: cp3')}")


@pytest.mark.parametrize(
    ("find", "replace", "expected"),
    [
        ("ipFamily: ipv4", "ipFamly: ipv4", "spec.cluster.ipFamly: unknown field; did you mean 'ipFamily'?"),
        (
            "plugin: kube-ovn",
            "plugin: weave",
            "spec.network.plugin: must be one of 'kube-ovn', 'calico', 'flannel' or 'custom'",
        ),
        (
            "clusterCIDR: 10.3.0.0/16",
            "clusterCIDR: 10.3.0.0/33",
            "spec.network.clusterCIDR: '10.3.0.0/33' has an impossible prefix length",
        ),
        ("clusterCIDR: 10.3.0.0/16", "clusterCIDR: 10.3.0.1/16", "has host bits set; did you mean 10.3.0.0/16?"),
        (
            "serviceCIDR: 10.4.0.0/16",
            "serviceCIDR: [10.4.0.0/16, 10.5.0.0/16]",
            "a dual-stack list needs one IPv4 and one IPv6 CIDR",
        ),
        (
            'kubernetesVersion: "1.34.5"',
            'kubernetesVersion: "latest"',
            "spec.cluster.kubernetesVersion: has the wrong format (expected e.g. 1.34.5)",
        ),
        ('version: "4.3"', 'version: "4.9"', "spec.acp.version: ACP 4.9 is not in acpcheck's version matrix"),
        ("ipv4: 192.0.2.21}", "ipv4: 192.0.2.321}", "spec.nodes[3].ipv4: '192.0.2.321' is not a valid IP address"),
        ("ipv4: 192.0.2.21}", "ipv4: 2001:db8::21}", "spec.nodes[3].ipv4: '2001:db8::21' is not an IPv4 address"),
        (
            "{name: w1, role: worker, ipv4: 192.0.2.21}",
            "{name: w1, role: worker}",
            "spec.nodes[3]: a node needs ipv4 or ipv6",
        ),
        (
            "role: worker, ipv4: 192.0.2.22",
            "role: master, ipv4: 192.0.2.22",
            "spec.nodes[4].role: must be one of 'control-plane' or 'worker'",
        ),
        ("port: 22", "port: 70000", "spec.ssh.port: Input should be less than or equal to 65535"),
        (
            "address: 192.0.2.100 ",
            "address: not_a_host! ",
            "spec.endpoint.address: 'not_a_host!' is neither an IP address nor a domain name",
        ),
        ("kind: ClusterPlan", "kind: Cluster", "kind: must be one of 'ClusterPlan'"),
        ("metadata: {name: prod-east}\n", "", "metadata: required field is missing"),
    ],
)
def test_schema_problem_names_file_line_and_field(tmp_path: Path, find: str, replace: str, expected: str) -> None:
    assert find in BASE, find
    text = BASE.replace(find, replace, 1)
    problems = problems_for(tmp_path, text)
    matching = [p for p in problems if expected in p]
    assert matching, problems
    # file:line: the line is the one the user has to edit (or the parent's for missing fields)
    assert matching[0].startswith(f"{tmp_path / 'plan.yaml'}:")


def test_all_problems_at_once_in_file_order(tmp_path: Path) -> None:
    text = (
        BASE.replace("ipFamily: ipv4", "ipFamily: ipv5")
        .replace("clusterCIDR: 10.3.0.0/16", "clusterCIDR: banana")
        .replace("ipv4: 192.0.2.22", "ipv4: 1.2.3")
    )
    problems = problems_for(tmp_path, text)
    assert len(problems) == 3
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)
    assert lines[0] == line_of(text, "ipFamily: ipv5")


@pytest.mark.parametrize(
    ("auth", "field", "hint"),
    [
        ("{password: Hunter2-secret}", "spec.ssh.auth.password", "passwordEnv"),
        ("{privateKey: Hunter2-secret}", "spec.ssh.auth.privateKey", "privateKeyFile"),
        ("{passphrase: Hunter2-secret, privateKeyFile: /k}", "spec.ssh.auth.passphrase", "passphraseEnv"),
        (
            "{privateKeyFile: '-----BEGIN OPENSSH PRIVATE KEY-----Hunter2-secret'}",
            "spec.ssh.auth.privateKeyFile",
            "inline private key",
        ),
    ],
)
def test_literal_secret_is_refused_without_echo(tmp_path: Path, auth: str, field: str, hint: str) -> None:
    text = BASE.replace("auth: {privateKeyFile: ~/.ssh/id_ed25519}", f"auth: {auth}")
    problems = problems_for(tmp_path, text)
    assert any(field in p and hint in p for p in problems), problems
    assert not any("Hunter2" in p for p in problems)


def test_proxy_credentials_in_url_are_refused_without_echo(tmp_path: Path) -> None:
    text = BASE.replace(
        "hostKeyPolicy: accept-new",
        "hostKeyPolicy: accept-new\n    proxy: {url: 'socks5://bob:Hunter2-secret@192.0.2.9:1080'}",
    )
    problems = problems_for(tmp_path, text)
    assert any("spec.ssh.proxy.url: a URL with user info (credentials) is refused" in p for p in problems)
    assert not any("Hunter2" in p for p in problems)


def test_only_socks5_proxies(tmp_path: Path) -> None:
    text = BASE.replace(
        "hostKeyPolicy: accept-new", "hostKeyPolicy: accept-new\n    proxy: {url: 'http://192.0.2.9:3128'}"
    )
    assert any("ACP only supports SOCKS5" in p for p in problems_for(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec: [unclosed", "invalid YAML"),
        ("- just\n- a list\n", "a plan must be a YAML mapping"),
        ("apiVersion: acpcheck/v1\napiVersion: acpcheck/v1\n", "apiVersion: duplicate key"),
    ],
)
def test_broken_yaml(tmp_path: Path, text: str, expected: str) -> None:
    assert any(expected in p for p in problems_for(tmp_path, text))


def test_missing_file() -> None:
    with pytest.raises(InputError, match="nope.yaml: file not found"):
        load_plan("nope.yaml")


def test_json_schema_is_usable() -> None:
    schema = plan_json_schema()
    text = json.dumps(schema)
    assert schema["title"] == "acpcheck ClusterPlan"
    for field in ("clusterCIDR", "serviceCIDR", "selfBuiltVIP", "kubernetesVersion", "passwordEnv", "hostKeyPolicy"):
        assert f'"{field}"' in text
    assert schema["additionalProperties"] is False


# ---------------------------------------------------------------------------
# spec.network: required when ACP builds the cluster, optional for imported/registered ones


def without_network(text: str) -> str:
    """``text`` with its whole ``network:`` section removed."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("  network:"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("    "))
    return "".join(lines[:start] + lines[end:])


@pytest.mark.parametrize("cluster_type", ["imported", "registered"])
def test_third_party_plan_may_omit_the_network(tmp_path: Path, cluster_type: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(without_network(BASE).replace("type: on-premise", f"type: {cluster_type}", 1))
    plan = load_plan(path)
    assert plan.spec.network is None and plan.spec.cluster.type == cluster_type


def test_registered_example_has_no_network() -> None:
    assert load_plan(EXAMPLES / "registered-cluster.yaml").spec.network is None


@pytest.mark.parametrize("cluster_type", ["on-premise", "hosted-control-plane", "immutable", None])
def test_network_is_required_when_acp_builds_the_cluster(tmp_path: Path, cluster_type: str | None) -> None:
    text = without_network(BASE)
    text = text.replace("    type: on-premise\n", f"    type: {cluster_type}\n" if cluster_type else "", 1)
    problems = problems_for(tmp_path, text)
    shown = cluster_type or "on-premise"  # the default type
    expected = f"{tmp_path / 'plan.yaml'}:{line_of(text, 'spec:')}: spec.network: required for cluster type {shown}"
    assert [p for p in problems if p.startswith(expected)], problems
    assert any("only imported and registered clusters may omit it" in p for p in problems)


def test_explicit_null_network_is_located_at_its_line(tmp_path: Path) -> None:
    text = without_network(BASE).replace("  nodes:", "  network: null\n  nodes:", 1)
    problems = problems_for(tmp_path, text)
    assert any(
        p.startswith(
            f"{tmp_path / 'plan.yaml'}:{line_of(text, 'network: null')}: spec.network: required for cluster "
            "type on-premise"
        )
        for p in problems
    )


def test_missing_network_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    text = without_network(BASE).replace("ipFamily: ipv4", "ipFamily: ipv5")
    problems = problems_for(tmp_path, text)
    assert any("spec.cluster.ipFamily" in p for p in problems) and any("spec.network: required" in p for p in problems)


def test_invalid_cluster_type_is_not_also_a_missing_network(tmp_path: Path) -> None:
    problems = problems_for(tmp_path, without_network(BASE).replace("type: on-premise", "type: imprted", 1))
    assert any("spec.cluster.type: must be one of" in p for p in problems)
    assert not any("spec.network" in p for p in problems)


def test_json_schema_says_when_the_network_is_required() -> None:
    schema = plan_json_schema()
    spec = schema["$defs"]["ClusterSpec"]
    assert "network" not in spec["required"]
    description = spec["properties"]["network"]["description"]
    assert "imported or registered" in description and "Required when ACP builds the cluster" in description
    assert spec["else"] == {"required": ["network"], "properties": {"network": {"type": "object"}}}
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    import yaml

    plan = yaml.safe_load(without_network(BASE))
    assert any("'network' is a required property" in e.message for e in validator.iter_errors(plan))
    plan["spec"]["cluster"]["type"] = "registered"
    assert not list(validator.iter_errors(plan))
    for example in sorted(EXAMPLES.glob("*.yaml")):
        assert not list(validator.iter_errors(yaml.safe_load(example.read_text()))), example.name


def test_unhashable_cluster_type_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    problems = problems_for(tmp_path, without_network(BASE).replace("type: on-premise", "type: [on-premise]", 1))
    assert any("spec.cluster.type" in p for p in problems)
