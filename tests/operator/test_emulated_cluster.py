"""The emulated Kubernetes API (`tests.harness.kubernetes`) behaves like a real API server for the
official `kubernetes` client and for Kopf: server-filled metadata, 201/404/409/422 answers,
generations, resource versions, status and scale subresources, finalizers, Events with
`generateName`, watches from a resource version; and a tiny Kopf operator, in-process and as a
subprocess configured by `KUBECONFIG`, handles ImageJobs on it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.harness.kubernetes import EmulatedCluster

pytestmark = pytest.mark.operator

GROUP, VERSION, PLURAL = "pixelfleet.dev", "v1alpha1", "imagejobs"
TINY_OPERATOR = Path(__file__).with_name("tiny_operator.py")


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(namespaces=("default", "team-a")) as cluster:
        yield cluster


@pytest.fixture
def api_client(cluster: EmulatedCluster) -> Iterator[k8s.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def custom(api_client: k8s.ApiClient) -> k8s.CustomObjectsApi:
    return k8s.CustomObjectsApi(api_client)


def imagejob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ImageJob",
        "metadata": {"name": name},
        "spec": {"ops": "resize", **spec},
    }


def create(custom: k8s.CustomObjectsApi, body: dict[str, Any], namespace: str = "default") -> Any:
    return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def get(custom: k8s.CustomObjectsApi, name: str, namespace: str = "default") -> Any:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


# ------------------------------------------------------------------------------------------------
# The official client against the emulated API.


def test_a_create_answers_201_with_the_server_filled_metadata(
    custom: k8s.CustomObjectsApi,
) -> None:
    body = imagejob("job-1") | {"status": {"phase": "Succeeded"}}
    created, status_code, _ = custom.create_namespaced_custom_object_with_http_info(
        GROUP, VERSION, "default", PLURAL, body
    )

    assert status_code == 201
    metadata = created["metadata"]
    assert metadata["name"] == "job-1"
    assert metadata["namespace"] == "default"  # from the URL
    assert metadata["uid"]
    assert metadata["creationTimestamp"].endswith("Z")
    assert metadata["resourceVersion"].isdigit()
    assert metadata["generation"] == 1
    assert "status" not in created  # ignored on create: ImageJob has a status subresource
    assert get(custom, "job-1") == created


def test_a_second_create_of_the_same_name_is_a_409_conflict(custom: k8s.CustomObjectsApi) -> None:
    create(custom, imagejob("job-1"))

    with pytest.raises(ApiException) as error:
        create(custom, imagejob("job-1", ops="blur"))

    assert error.value.status == 409
    assert get(custom, "job-1")["spec"]["ops"] == "resize"
    create(custom, imagejob("job-1"), namespace="team-a")  # another namespace: another object


def test_get_and_list_in_a_namespace_cluster_wide_and_by_label(
    cluster: EmulatedCluster, custom: k8s.CustomObjectsApi
) -> None:
    create(custom, imagejob("job-1") | {"metadata": {"name": "job-1", "labels": {"tier": "a"}}})
    create(custom, imagejob("job-2"))
    create(custom, imagejob("job-3"), namespace="team-a")

    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    everywhere = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    labelled = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector="tier=a")

    assert [item["metadata"]["name"] for item in listed["items"]] == ["job-1", "job-2"]
    assert [item["metadata"]["name"] for item in everywhere["items"]] == ["job-1", "job-2", "job-3"]
    assert [item["metadata"]["name"] for item in labelled["items"]] == ["job-1"]
    assert int(everywhere["metadata"]["resourceVersion"]) >= int(
        everywhere["items"][-1]["metadata"]["resourceVersion"]
    )
    assert get(custom, "job-3", "team-a")["metadata"]["namespace"] == "team-a"
    with pytest.raises(ApiException) as error:
        get(custom, "job-3")
    assert error.value.status == 404
    assert [job["metadata"]["name"] for job in cluster.objects("imagejobs", "team-a")] == ["job-3"]
    assert cluster.get("ij", "default", "job-2") == get(custom, "job-2")


def test_generation_follows_spec_changes_and_every_write_gets_a_new_resource_version(
    custom: k8s.CustomObjectsApi,
) -> None:
    created = create(custom, imagejob("job-1"))
    seen = [created["metadata"]["resourceVersion"]]

    def patch(body: dict[str, Any], *, status: bool = False) -> Any:
        patch_fn = (
            custom.patch_namespaced_custom_object_status
            if status
            else custom.patch_namespaced_custom_object
        )
        patched = patch_fn(GROUP, VERSION, "default", PLURAL, "job-1", body)
        seen.append(patched["metadata"]["resourceVersion"])
        return patched

    after_status = patch({"status": {"phase": "Running", "observedGeneration": 1}}, status=True)
    assert after_status["metadata"]["generation"] == 1
    assert after_status["status"] == {"phase": "Running", "observedGeneration": 1}

    after_labels = patch({"metadata": {"labels": {"seen": "yes"}}})
    assert after_labels["metadata"]["generation"] == 1

    after_spec = patch({"spec": {"priority": 5}})
    assert after_spec["metadata"]["generation"] == 2
    assert after_spec["spec"] == {"ops": "resize", "priority": 5}
    assert after_spec["status"]["phase"] == "Running"

    # Each subresource keeps to its part: /status ignores spec, the main resource ignores status.
    mixed = patch({"spec": {"priority": 9}, "status": {"phase": "Failed"}}, status=True)
    assert (mixed["spec"]["priority"], mixed["status"]["phase"]) == (5, "Failed")
    mixed = patch({"spec": {"priority": 1}, "status": {"phase": "Running"}})
    assert (mixed["spec"]["priority"], mixed["status"]["phase"]) == (1, "Failed")
    assert mixed["metadata"]["generation"] == 3

    assert len(set(seen)) == len(seen)  # a new resourceVersion on every write
    assert [int(version) for version in seen] == sorted(int(version) for version in seen)

    unchanged = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "job-1", {"spec": {"priority": 1}}
    )
    assert unchanged["metadata"]["resourceVersion"] == seen[-1]  # a no-op, as on a real server

    stale = {"metadata": {"resourceVersion": seen[0]}, "spec": {"priority": 2}}
    with pytest.raises(ApiException) as error:
        custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "job-1", stale)
    assert error.value.status == 409


def test_json_patches_test_the_resource_version_and_replacements_need_the_latest_one(
    custom: k8s.CustomObjectsApi,
) -> None:
    created = create(custom, imagejob("job-1"))
    version = created["metadata"]["resourceVersion"]
    test = {"op": "test", "path": "/metadata/resourceVersion", "value": version}
    add_label = {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}

    def json_patch(operations: list[dict[str, Any]]) -> Any:
        return custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "job-1", operations,
            _content_type="application/json-patch+json",
        )  # fmt: skip

    patched = json_patch([test, add_label])
    assert patched["metadata"]["labels"] == {"a": "b"}
    with pytest.raises(ApiException) as error:  # the version has moved on: Kopf expects a 422
        json_patch([test, add_label])
    assert error.value.status == 422

    replacement = imagejob("job-1", ops="blur") | {"metadata": patched["metadata"]}
    replaced = custom.replace_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "job-1", replacement
    )
    assert replaced["spec"] == {"ops": "blur"}
    assert replaced["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as error:  # the same replacement again: a stale version
        custom.replace_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "job-1", replacement
        )
    assert error.value.status == 409


def test_a_delete_removes_the_object(
    cluster: EmulatedCluster, custom: k8s.CustomObjectsApi
) -> None:
    create(custom, imagejob("job-1"))

    deleted = custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "job-1")

    assert deleted["metadata"]["name"] == "job-1"
    with pytest.raises(ApiException) as error:
        get(custom, "job-1")
    assert error.value.status == 404
    assert cluster.get("imagejobs", "default", "job-1") is None
    assert cluster.history("imagejobs", "default", "job-1")[-1] is None
    create(custom, imagejob("job-1"))  # the name is free again


def test_a_delete_waits_for_the_finalizers_to_be_removed(
    cluster: EmulatedCluster, custom: k8s.CustomObjectsApi
) -> None:
    body = imagejob("job-1") | {"metadata": {"name": "job-1", "finalizers": ["test/hold"]}}
    create(custom, body)

    marked = custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "job-1")

    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == ["test/hold"]
    assert marked["metadata"]["generation"] == 2  # as a real server does when marking
    assert get(custom, "job-1")["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException) as error:  # no new finalizers on an object being deleted
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "job-1",
            {"metadata": {"finalizers": ["test/hold", "test/another"]}},
        )  # fmt: skip
    assert error.value.status == 422

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "job-1", {"metadata": {"finalizers": None}}
    )

    with pytest.raises(ApiException) as error:
        get(custom, "job-1")
    assert error.value.status == 404
    assert cluster.get("imagejobs", "default", "job-1") is None


def test_events_with_generate_name_get_a_name_each(
    cluster: EmulatedCluster, api_client: k8s.ApiClient
) -> None:
    core = k8s.CoreV1Api(api_client)
    for number in (1, 2):
        core.create_namespaced_event(
            "default",
            k8s.CoreV1Event(
                metadata=k8s.V1ObjectMeta(generate_name="job-1."),
                involved_object=k8s.V1ObjectReference(
                    api_version=f"{GROUP}/{VERSION}", kind="ImageJob", name="job-1"
                ),
                reason="Tested",
                message=f"event {number}",
                type="Normal",
            ),
        )

    events = cluster.events("default", involving="job-1")
    assert [event["message"] for event in events] == ["event 1", "event 2"]
    names = [event["metadata"]["name"] for event in events]
    assert all(name.startswith("job-1.") and len(name) == len("job-1.") + 5 for name in names)
    assert len(set(names)) == 2


def test_a_watch_from_a_resource_version_streams_only_the_later_changes(
    custom: k8s.CustomObjectsApi,
) -> None:
    create(custom, imagejob("old"))
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    create(custom, imagejob("new"))
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "old", {"status": {"phase": "Running"}}
    )

    watch = kubernetes.watch.Watch()
    seen = []
    for event in watch.stream(
        custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL,
        resource_version=listed["metadata"]["resourceVersion"], timeout_seconds=1,
    ):  # fmt: skip
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if len(seen) == 2:
            watch.stop()

    assert seen == [("ADDED", "new"), ("MODIFIED", "old")]  # "old" is not replayed as ADDED


def test_namespaces_can_be_created_read_listed_and_deleted(api_client: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api_client)

    created = core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="team-b")))

    assert created.status is not None
    assert created.status.phase == "Active"
    assert created.metadata is not None
    read = core.read_namespace("team-b")
    assert read.metadata is not None
    assert read.metadata.uid == created.metadata.uid
    assert [ns.metadata.name for ns in core.list_namespace().items if ns.metadata] == [
        "default",
        "team-a",
        "team-b",
    ]
    core.delete_namespace("team-b")
    with pytest.raises(ApiException) as error:
        core.read_namespace("team-b")
    assert error.value.status == 404


def test_the_deployment_scale_subresource_reads_and_writes_spec_replicas(
    cluster: EmulatedCluster, api_client: k8s.ApiClient
) -> None:
    apps = k8s.AppsV1Api(api_client)
    labels = {"app": "pixelfleet-worker"}
    apps.create_namespaced_deployment(
        "default",
        k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name="worker"),
            spec=k8s.V1DeploymentSpec(
                replicas=2,
                selector=k8s.V1LabelSelector(match_labels=labels),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=labels),
                    spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="w", image="w:1")]),
                ),
            ),
        ),
    )
    cluster.patch(
        "deployments", "default", "worker", {"status": {"replicas": 2}}, subresource="status"
    )

    scale = apps.read_namespaced_deployment_scale("worker", "default")
    assert scale.spec is not None
    assert scale.spec.replicas == 2
    assert scale.status is not None
    assert scale.status.replicas == 2
    assert scale.status.selector == "app=pixelfleet-worker"

    scaled = apps.patch_namespaced_deployment_scale("worker", "default", {"spec": {"replicas": 5}})

    assert scaled.spec is not None
    assert scaled.spec.replicas == 5
    deployment = apps.read_namespaced_deployment("worker", "default")
    assert deployment.spec is not None
    assert deployment.spec.replicas == 5
    assert deployment.metadata is not None
    assert deployment.metadata.generation == 2  # a scale changes the spec
    with pytest.raises(ApiException) as error:
        apps.patch_namespaced_deployment_scale("worker", "default", {"spec": {"replicas": -1}})
    assert error.value.status == 422


async def test_the_cluster_starts_and_stops_from_an_async_test() -> None:
    async with EmulatedCluster() as cluster:
        with cluster.api_client() as api_client:
            custom = k8s.CustomObjectsApi(api_client)
            await asyncio.to_thread(create, custom, imagejob("job-1"))
        assert cluster.get("imagejobs", "default", "job-1") is not None


# ------------------------------------------------------------------------------------------------
# Kopf against the emulated API.


def test_a_tiny_kopf_operator_in_process_handles_creation_and_deletion(
    cluster: EmulatedCluster, custom: k8s.CustomObjectsApi
) -> None:
    create(custom, imagejob("early", who="early bird"))  # exists before the operator starts
    args = ["run", "-A", "--standalone", str(TINY_OPERATOR)]
    with KopfRunner(args, registry=cluster.kopf_registry(), timeout=30) as runner:
        cluster.wait(lambda: cluster.watching("imagejobs"))
        create(custom, imagejob("job-1", who="world"))

        job = cluster.wait(
            lambda: (cluster.get("imagejobs", "default", "job-1") or {}).get("status")
        )
        assert job == {"greet": {"greeted": "world"}}  # the handler's return value
        greeted = cluster.wait(lambda: cluster.events("default", involving="job-1"))
        assert [(e["reason"], e["message"]) for e in greeted] == [("Greeted", "Hello, world!")]
        assert greeted[0]["involvedObject"]["kind"] == "ImageJob"
        assert cluster.get("imagejobs", "default", "job-1")["metadata"]["finalizers"] == [
            "tiny.pixelfleet.dev/finalizer"
        ]

        custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "job-1")
        cluster.wait(lambda: cluster.get("imagejobs", "default", "job-1") is None)
        farewell = cluster.wait(lambda: cluster.events("default", involving="job-1")[1:])

    assert runner.exit_code == 0, runner.output
    early = cluster.events("default", involving="early")
    assert [e["reason"] for e in early] == ["Greeted"]  # handled once: no replay after the list
    assert [(e["reason"], e["message"]) for e in farewell] == [
        ("Farewell", "Deleting while finalizers=tiny.pixelfleet.dev/finalizer")
    ]
    *_, last, gone = cluster.history("imagejobs", "default", "job-1")
    assert gone is None
    assert last is not None
    assert last["metadata"]["deletionTimestamp"]
    assert last["metadata"]["annotations"]["tiny.pixelfleet.dev/farewell"] == "said"


def test_a_tiny_kopf_operator_subprocess_finds_the_cluster_by_kubeconfig(
    cluster: EmulatedCluster, tmp_path: Path
) -> None:
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    configuration = k8s.Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(kubeconfig), client_configuration=configuration
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    command = [sys.executable, "-m", "kopf", "run", "-A", "--standalone", str(TINY_OPERATOR)]
    operator = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        cluster.wait(lambda: cluster.watching("imagejobs"), timeout=30)
        with k8s.ApiClient(configuration) as api_client:
            create(k8s.CustomObjectsApi(api_client), imagejob("job-1", who="subprocess"))
        job = cluster.wait(
            lambda: (cluster.get("imagejobs", "default", "job-1") or {}).get("status")
        )
        assert job == {"greet": {"greeted": "subprocess"}}
    finally:
        operator.terminate()
        output, _ = operator.communicate(timeout=30)
    assert operator.returncode == 0, output
