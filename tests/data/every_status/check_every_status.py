"""A check pack with one check of every outcome, for the report tests (tests/data/report_runs.py).

Ids in a range no first-party check uses (9xx). Run on examples/workload-kube-ovn.yaml
(cp1-cp3, w1, w2) with replayed facts in which w1 is unreachable, it gives PASS,
FAIL (one plan FAIL, one the same on every reachable node), WARN (advice and a
failure below fail_on), WAIVED, SKIP, MANUAL, an ERROR of a broken check, and one
ERROR per node check on w1 with the same reason.
"""

from acpcheck import Scope, Severity, When, check, fail, manual, warn

REF = ["https://docs.alauda.io/container_platform/4.3/install/prepare/node_preprocessing.html"]


def rule(check_id, title, severity, remediation, **more):
    """@check with the pack's one source."""
    return check(id=check_id, title=title, severity=severity, refs=REF, remediation=remediation, **more)


@rule("ACP-NET-901", "passes", Severity.HIGH, "nothing to do")
def check_passes(plan):
    """Always compliant."""


@rule("ACP-NET-902", "the cluster CIDR is not 10.3.0.0/16", Severity.HIGH, "fix the CIDR")
def check_fails(plan):
    """Why 902 exists: the cluster CIDR must be chosen on purpose."""
    fail(f"{plan.spec.network.cluster_cidr[0]} overlaps 10.3.0.0/17", at=plan.where("spec", "network", "clusterCIDR"))


@rule("ACP-NET-903", "low severity failure", Severity.LOW, "consider it")
def check_low(plan):
    """Below fail_on: a WARN."""
    assert plan.spec.cluster.role == "global", "this is not the global cluster"


@rule("ACP-NET-904", "explicit warning", Severity.CRITICAL, "look at it")
def check_warns(plan):
    """warn() is always WARN."""
    warn("worth a look")


@rule("ACP-NET-905", "not applicable", Severity.HIGH, "-", applies=When(plugins=frozenset({"calico"})))
def check_calico_only(plan):
    """Skipped for Kube-OVN plans."""
    fail("must not run")


@rule("ACP-NET-906", "needs a person", Severity.HIGH, "ask the network team")
def check_manual(plan):
    """Manual."""
    manual("ask the network team whether VRRP is allowed")


@rule("ACP-NET-907", "broken check", Severity.HIGH, "-")
def check_breaks(plan):
    """A bug or a lost connection is ERROR, never FAIL."""
    raise ConnectionError("node unreachable")


@rule("ACP-NET-913", "waived failure", Severity.HIGH, "use three control-plane nodes")
def check_waived(plan):
    """Waived in the tests' waivers file."""
    fail("accepted for the lab")


@rule("ACP-NODE-908", "per worker", Severity.HIGH, "rebuild w2", scope=Scope.NODE, roles={"worker"})
def check_per_worker(node):
    """Runs once per worker node."""
    if node.facts.hostname == "w2":
        fail(f"{node.name} ({node.spec.ipv4}) is bad")


@rule("ACP-NODE-909", "swap is disabled", Severity.HIGH, "swapoff -a", scope=Scope.NODE)
def check_same_everywhere(node):
    """The same FAIL on every node: the report lists the nodes once."""
    fail("swap is on (/swap.img)")


@rule("ACP-NODE-910", "a node check that passes", Severity.MEDIUM, "-", scope=Scope.NODE)
def check_node_passes(node):
    """Passes wherever the node answers."""


@rule("ACP-NODE-911", "another node check that passes", Severity.MEDIUM, "-", scope=Scope.NODE)
def check_node_passes_too(node):
    """Passes wherever the node answers."""
