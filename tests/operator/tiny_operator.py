"""A tiny Kopf operator for `test_emulated_cluster.py`: proves that Kopf runs against the emulated
API (`kopf run -A --standalone tests/operator/tiny_operator.py`, `KUBECONFIG` pointing at it).

On creation of an ImageJob, its handler's return value lands in `status.greet` and an Event is
posted; on deletion, a handler (behind Kopf's finalizer) posts an Event and marks the object
before Kopf lets it go."""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.startup()
def quick_settings(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = 0  # post every event, whatever its level
    settings.watching.connect_timeout = 5
    settings.watching.server_timeout = 30
    settings.networking.request_timeout = 10
    settings.persistence.finalizer = "tiny.pixelfleet.dev/finalizer"


@kopf.on.create("pixelfleet.dev", "v1alpha1", "imagejobs")
def greet(spec: kopf.Spec, body: kopf.Body, **_: Any) -> dict[str, Any]:
    kopf.info(body, reason="Greeted", message=f"Hello, {spec.get('who', 'nobody')}!")
    return {"greeted": spec.get("who", "nobody")}


@kopf.on.delete("pixelfleet.dev", "v1alpha1", "imagejobs")
def farewell(body: kopf.Body, meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    finalizers = ",".join(meta.get("finalizers", []))
    kopf.info(body, reason="Farewell", message=f"Deleting while finalizers={finalizers}")
    patch.metadata.annotations["tiny.pixelfleet.dev/farewell"] = "said"
