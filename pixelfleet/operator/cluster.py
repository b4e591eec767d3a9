"""The Kubernetes API as PixelFleet uses it: ImageJobs (create-or-get, status, delete) and
Events, through the official client (synchronous, so each call runs in a thread)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from pixelfleet.operator.resources import (
    CREDITBINDING_PLURAL,
    GROUP,
    IMAGEJOB_KIND,
    IMAGEJOB_PLURAL,
    VERSION,
)


def load_api_client() -> client.ApiClient:
    """In-cluster credentials inside a pod, else the `KUBECONFIG` (or ~/.kube/config) context."""
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        # KUBECONFIG is read now, not when the client was imported.
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    return client.ApiClient(configuration)


class ImageJobs:
    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    async def _call(
        self,
        status_meaning_no: int,
        call: Callable[..., Any],
        *args: Any,
        namespace: str | None = None,
    ) -> Any:
        """Runs one client call on the ImageJob resource in a thread, in `namespace` (None:
        PixelFleet's own); an answer with `status_meaning_no` (409: exists, 404: gone) comes
        back as None instead of raising."""

        def run() -> Any:
            try:
                return call(GROUP, VERSION, namespace or self.namespace, IMAGEJOB_PLURAL, *args)
            except ApiException as exc:
                if exc.status == status_meaning_no:
                    return None
                raise

        return await asyncio.to_thread(run)

    async def create(self, body: dict[str, Any]) -> bool:
        """Creates the ImageJob; False when one with its name already exists (create-or-get)."""
        return await self._call(409, self.custom.create_namespaced_custom_object, body) is not None

    async def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        found = await self._call(
            404, self.custom.get_namespaced_custom_object, name, namespace=namespace
        )
        return cast(dict[str, Any] | None, found)

    async def patch_status(
        self, name: str, status: dict[str, Any], namespace: str | None = None
    ) -> bool:
        """Merges `status` into the ImageJob's status; False when the ImageJob is gone."""
        patched = await self._call(
            404,
            self.custom.patch_namespaced_custom_object_status,
            name,
            {"status": status},
            namespace=namespace,
        )
        return patched is not None

    async def delete(self, name: str, namespace: str | None = None) -> bool:
        deleted = await self._call(
            404, self.custom.delete_namespaced_custom_object, name, namespace=namespace
        )
        return deleted is not None

    async def listed(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every ImageJob in `namespace` (None: PixelFleet's own)."""
        found = await self._call(
            404, self.custom.list_namespaced_custom_object, namespace=namespace
        )
        return list(cast(dict[str, Any], found or {}).get("items") or [])

    async def set_finalizers(
        self, name: str, finalizers: list[str], namespace: str | None = None
    ) -> bool:
        """Replaces the ImageJob's finalizers (a merge patch sets the whole list); False when
        the ImageJob is gone."""
        patch = {"metadata": {"finalizers": finalizers or None}}
        patched = await self._call(
            404, self.custom.patch_namespaced_custom_object, name, patch, namespace=namespace
        )
        return patched is not None

    async def post_event(self, job: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """A Kubernetes Event about the ImageJob (`kubectl describe ij NAME` shows it)."""
        metadata = job.get("metadata", {})
        namespace = str(metadata.get("namespace") or self.namespace)
        now = datetime.now(UTC)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{metadata.get('name', 'imagejob')}.",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": job.get("kind", IMAGEJOB_KIND),
                "name": metadata.get("name"),
                "namespace": namespace,
                "uid": metadata.get("uid"),
            },
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "pixelfleet-operator"},
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
            "reportingComponent": "pixelfleet-operator",
        }
        # The client takes a plain dict as well as its model classes.
        await asyncio.to_thread(self.core.create_namespaced_event, namespace, cast(Any, body))


class CreditBindings:
    """The bindings of namespaces to accounts: read at each admission, their status written."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api_client)

    async def in_namespace(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's bindings, oldest first (the one that counts is the oldest)."""

        def read() -> list[dict[str, Any]]:
            found = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, CREDITBINDING_PLURAL
            )
            return list(cast(dict[str, Any], found).get("items") or [])

        items = await asyncio.to_thread(read)
        return sorted(
            items,
            key=lambda b: (
                str(b.get("metadata", {}).get("creationTimestamp") or ""),
                str(b.get("metadata", {}).get("name") or ""),
            ),
        )

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        """Merges `status` into the binding's; False when the binding is gone."""

        def patch() -> bool:
            try:
                self.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, CREDITBINDING_PLURAL, name, {"status": status}
                )
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return await asyncio.to_thread(patch)


DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


class WorkerPools:
    """What the autoscaler touches: WorkerPool status, a Deployment's scale, its pods."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    async def patch_status(self, name: str, status: dict[str, Any]) -> None:
        from pixelfleet.operator.resources import WORKERPOOL_PLURAL

        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            self.namespace,
            WORKERPOOL_PLURAL,
            name,
            {"status": status},
        )

    async def replicas(self, deployment: str) -> tuple[int, dict[str, str]]:
        """The Deployment's wanted replica count and its pod selector's labels."""

        def read() -> tuple[int, dict[str, str]]:
            found = self.apps.read_namespaced_deployment(deployment, self.namespace)
            spec = found.spec
            labels = dict(spec.selector.match_labels or {}) if spec and spec.selector else {}
            return int(spec.replicas if spec and spec.replicas is not None else 1), labels

        return await asyncio.to_thread(read)

    async def scale(self, deployment: str, replicas: int) -> None:
        await asyncio.to_thread(
            self.apps.patch_namespaced_deployment_scale,
            deployment,
            self.namespace,
            {"spec": {"replicas": replicas}},
        )

    async def pods(
        self, labels: dict[str, str], *, stopping: bool = False
    ) -> list[tuple[str, str | None]]:
        """(name, deletion cost annotation) of the pods the labels select (with `stopping`,
        those being deleted too)."""
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))

        def read() -> list[tuple[str, str | None]]:
            found = self.core.list_namespaced_pod(self.namespace, label_selector=selector)
            return [
                (
                    str(pod.metadata.name),
                    (pod.metadata.annotations or {}).get(DELETION_COST),
                )
                for pod in found.items
                if pod.metadata is not None
                and (stopping or pod.metadata.deletion_timestamp is None)
            ]

        return await asyncio.to_thread(read)

    async def set_deletion_cost(self, pod: str, cost: int) -> None:
        await asyncio.to_thread(
            self.core.patch_namespaced_pod,
            pod,
            self.namespace,
            {"metadata": {"annotations": {DELETION_COST: str(cost)}}},
        )
