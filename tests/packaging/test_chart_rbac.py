"""The chart grants each part exactly the Kubernetes verbs it uses: the calls the code makes (read
from the code itself, so a new call without its grant fails here) plus what Kopf needs to watch
its resources; nothing more."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.harness.helm import Helm
from tests.packaging.rendered import CHART, FULLNAME, Rendered

CLUSTER_MODULE = Path(__file__).resolve().parents[2] / "pixelfleet" / "operator" / "cluster.py"

Grant = tuple[str, str, str]  # (API group, resource, verb)

# Each Kubernetes client call in pixelfleet/operator/cluster.py, by the class making it: which
# service account makes it ("app": the API and beat; "operator") and the grant it needs.
CALLS: dict[tuple[str, str], tuple[str, Grant]] = {
    ("ImageJobs", "create_namespaced_custom_object"): (
        "app",
        ("pixelfleet.dev", "imagejobs", "create"),
    ),
    ("ImageJobs", "get_namespaced_custom_object"): (
        "operator",
        ("pixelfleet.dev", "imagejobs", "get"),
    ),
    ("ImageJobs", "patch_namespaced_custom_object_status"): (
        "operator",
        ("pixelfleet.dev", "imagejobs/status", "patch"),
    ),
    ("ImageJobs", "delete_namespaced_custom_object"): (
        "operator",
        ("pixelfleet.dev", "imagejobs", "delete"),
    ),
    ("ImageJobs", "create_namespaced_event"): ("operator", ("", "events", "create")),
    # The pre-delete hook, with the operator's account (pixelfleet/operator/release.py).
    ("ImageJobs", "list_namespaced_custom_object"): (
        "operator",
        ("pixelfleet.dev", "imagejobs", "list"),
    ),
    ("ImageJobs", "patch_namespaced_custom_object"): (
        "operator",
        ("pixelfleet.dev", "imagejobs", "patch"),
    ),
    ("CreditBindings", "list_namespaced_custom_object"): (
        "operator",
        ("pixelfleet.dev", "creditbindings", "list"),
    ),
    ("CreditBindings", "patch_namespaced_custom_object_status"): (
        "operator",
        ("pixelfleet.dev", "creditbindings/status", "patch"),
    ),
    ("WorkerPools", "patch_namespaced_custom_object_status"): (
        "operator",
        ("pixelfleet.dev", "workerpools/status", "patch"),
    ),
    ("WorkerPools", "read_namespaced_deployment"): ("operator", ("apps", "deployments", "get")),
    ("WorkerPools", "patch_namespaced_deployment_scale"): (
        "operator",
        ("apps", "deployments/scale", "patch"),
    ),
    ("WorkerPools", "list_namespaced_pod"): ("operator", ("", "pods", "list")),
    ("WorkerPools", "patch_namespaced_pod"): ("operator", ("", "pods", "patch")),
}

# Kopf lists and watches the resources it serves and patches its finalizer and progress onto
# them; it looks up their CRDs, and lists namespaces to find its own (cluster-scoped).
KOPF: set[Grant] = {
    (group, resource, verb)
    for group, resource in (
        ("pixelfleet.dev", "imagejobs"),
        ("pixelfleet.dev", "creditbindings"),
        ("pixelfleet.dev", "workerpools"),
    )
    for verb in ("list", "watch", "patch")
} | {
    ("pixelfleet.dev", "imagejobs/status", "patch"),
    ("pixelfleet.dev", "creditbindings/status", "patch"),
    ("pixelfleet.dev", "workerpools/status", "patch"),
}
KOPF_CLUSTER: set[Grant] = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
}


def _client_calls() -> set[tuple[str, str]]:
    """(class, method) of every `self.<api>.<verb>_namespaced_*` reference in the module."""
    calls: set[tuple[str, str]] = set()
    for node in ast.parse(CLUSTER_MODULE.read_text()).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for inner in ast.walk(node):
            if (
                isinstance(inner, ast.Attribute)
                and "_namespaced_" in inner.attr
                and isinstance(inner.value, ast.Attribute)
                and inner.value.attr in {"custom", "core", "apps"}
            ):
                calls.add((node.name, inner.attr))
    return calls


def _granted(
    rendered: Rendered, kind: str, name: str, namespace: str | None = None
) -> set[Grant]:
    [found] = [
        m
        for m in rendered.of_kind(kind)
        if m["metadata"]["name"] == name
        and (namespace is None or m["metadata"].get("namespace") == namespace)
    ]
    return {
        (group, resource, verb)
        for rule in found["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return Rendered(Helm(tmp_path_factory.mktemp("helm")).template(CHART))


def test_the_table_of_calls_is_the_codes() -> None:
    assert _client_calls() == set(CALLS), "a Kubernetes call was added or removed: update CALLS"


def test_the_api_and_beat_may_only_create_imagejobs(rendered: Rendered) -> None:
    needed = {grant for who, grant in CALLS.values() if who == "app"}
    assert (
        _granted(rendered, "Role", f"{FULLNAME}-app")
        == needed
        == {("pixelfleet.dev", "imagejobs", "create")}
    )


def test_the_operator_gets_the_verbs_it_uses_and_no_others(rendered: Rendered) -> None:
    needed = {grant for who, grant in CALLS.values() if who == "operator"} | KOPF
    assert _granted(rendered, "Role", f"{FULLNAME}-operator") == needed


def test_in_a_namespace_it_watches_for_jobs_applied_by_hand_the_operator_gets_job_verbs_only(
    tmp_path: Path,
) -> None:
    rendered = Rendered(
        Helm(tmp_path).template(CHART, set_values={"operator": {"watchNamespaces": ["team-a"]}})
    )
    on_jobs = {
        grant
        for who, grant in CALLS.values()
        if who == "operator" and grant[1].split("/")[0] in ("imagejobs", "creditbindings", "events")
    } | {grant for grant in KOPF if not grant[1].startswith("workerpools")}
    assert _granted(rendered, "Role", f"{FULLNAME}-operator", "team-a") == on_jobs
    [binding] = [
        b for b in rendered.of_kind("RoleBinding") if b["metadata"].get("namespace") == "team-a"
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{FULLNAME}-operator", "namespace": "pixelfleet"}
    ]
    args = rendered.pod_spec("Deployment", "operator")["containers"][0]["args"]
    assert args[1:] == ["--namespace", "pixelfleet", "--namespace", "team-a"]


def test_the_operators_only_cluster_wide_grants_are_reading_crds_and_namespaces(
    rendered: Rendered,
) -> None:
    [cluster_role] = rendered.of_kind("ClusterRole")
    assert _granted(rendered, "ClusterRole", cluster_role["metadata"]["name"]) == KOPF_CLUSTER
    [binding] = rendered.of_kind("ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{FULLNAME}-operator", "namespace": "pixelfleet"}
    ]


def test_each_role_is_bound_to_the_service_account_of_the_pods_that_need_it(
    rendered: Rendered,
) -> None:
    bindings = {
        b["roleRef"]["name"]: [s["name"] for s in b["subjects"]]
        for b in rendered.of_kind("RoleBinding")
    }
    assert bindings == {
        f"{FULLNAME}-app": [f"{FULLNAME}-app"],
        f"{FULLNAME}-operator": [f"{FULLNAME}-operator"],
    }
    accounts = {
        role: rendered.pod_spec("Deployment", role)["serviceAccountName"]
        for role in ("api", "beat", "operator")
    }
    assert accounts == {
        "api": f"{FULLNAME}-app",
        "beat": f"{FULLNAME}-app",
        "operator": f"{FULLNAME}-operator",
    }


def test_a_cloud_role_annotation_reaches_every_account_that_touches_storage(
    tmp_path: Path,
) -> None:
    role = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/pixelfleet"}
    rendered = Rendered(
        Helm(tmp_path).template(CHART, set_values={"serviceAccount": {"annotations": role}})
    )
    accounts = {a["metadata"]["name"]: a for a in rendered.of_kind("ServiceAccount")}
    assert set(accounts) == {f"{FULLNAME}-{part}" for part in ("app", "worker", "operator")}
    for account in accounts.values():
        assert account["metadata"]["annotations"] == role
    assert accounts[f"{FULLNAME}-worker"]["automountServiceAccountToken"] is False
    assert rendered.pod_spec("Deployment", "worker")["serviceAccountName"] == f"{FULLNAME}-worker"
