"""An emulated Kubernetes API server for the operator's tests, built on kmock (by Kopf's author).

`EmulatedCluster` serves kmock's in-memory `KubernetesEmulator` over real HTTP on a free loopback
port, from its own thread and event loop, so that everything can talk to it at once: the official
`kubernetes` client (sync, from any thread), Kopf in a `KopfRunner` thread, and an operator
subprocess pointed at it by `KUBECONFIG`. No authentication.

    with EmulatedCluster() as cluster, KopfRunner([...], registry=cluster.kopf_registry()):
        cluster.wait(lambda: cluster.watching("imagejobs"))   # the operator is up
        client = cluster.api_client()          # or kubernetes.config via cluster.kubeconfig(path)
        api = kubernetes.client.CustomObjectsApi(client)
        api.create_namespaced_custom_object("pixelfleet.dev", "v1alpha1", "default", "imagejobs",
                                            {"metadata": {"name": "job-1"}, "spec": {...}})
        status = cluster.wait(lambda: (cluster.get("ij", "default", "job-1") or {}).get("status"))
        assert cluster.events("default", involving="job-1")

From async tests, `async with EmulatedCluster() as cluster:` does the same (the helpers are sync:
they only wait for the server's thread, never for the caller's loop). Prefer `KopfRunner` (a
thread) to `kopf.operator()` in pytest's main-thread loop: Kopf installs SIGINT/SIGTERM handlers
on the loop of the main thread and leaves them there.

`ApiServerEmulator` is kmock's emulator made to behave like a real API server where kmock 0.8
does not (modelled on the apiserver's documented behaviour, not checked against a live cluster):

* create answers 201 with the stored object; it fills in `metadata.namespace` from the URL,
  a name from `metadata.generateName`, `uid`, `creationTimestamp`, `resourceVersion`,
  `generation: 1`, `apiVersion` and `kind`; it drops `status` for resources with a `status`
  subresource (the real API ignores it on create); a live object of the same name answers 409;
* one cluster-wide `resourceVersion` counter: every effective write bumps it (a patch that changes
  nothing is a no-op, as on a real server: same `resourceVersion`, no watch event);
* `metadata.generation` goes +1 when anything but `metadata` and `status` changes, and when the
  object is marked for deletion; `/status` writes keep only `status` and the main resource ignores
  `status` (for resources with the `status` subresource);
* PATCH takes merge patches (RFC 7386; strategic merge patches are treated as merge patches) and
  JSON patches (RFC 6902, a failed `test` answers 422, as Kopf expects); PUT replaces; a
  `metadata.resourceVersion` in a PUT/merge patch/delete precondition must match (409);
* DELETE honours finalizers (sets `deletionTimestamp`, keeps the object until the last finalizer
  is removed, then it is gone); no new finalizers can be added to an object being deleted (422);
* LIST returns a `resourceVersion`, supports `labelSelector`, `fieldSelector`, `limit`/`continue`;
* WATCH with `resourceVersion=N` streams only the changes after N (kmock replays every object
  to every watch, so Kopf saw objects twice), honours `timeoutSeconds`, `allowWatchBookmarks`
  (a BOOKMARK every `bookmark_interval` seconds), `sendInitialEvents` and the selectors;
* the core `namespaces` resource works (kmock 0.8 mis-parses `/api/v1/namespaces[/NAME]` and
  answers the list with a 500);
* `apps/v1` Deployments have a `scale` subresource (GET/PATCH/PUT an `autoscaling/v1` Scale that
  reads and writes `spec.replicas`).

Not emulated: admission/validation against CRD schemas, defaulting (except `spec.replicas: 1` for
Deployments and `status.phase: Active` for Namespaces), server-side apply (415), garbage collection
by owner references, cascading namespace deletion, DELETE on collections, any controllers.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import copy
import datetime
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp.web
import attrs
import jsonpatch
import kmock
import kopf
import kubernetes.client
import yaml
from kmock._internal.rendering import Response  # kmock 0.8 leaves it out of `kmock.__all__`

Body = dict[str, Any]
T = TypeVar("T")

GROUP = "pixelfleet.dev"
VERSION = "v1alpha1"

ALL_VERBS = frozenset(
    {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
)


def default_resources() -> dict[str, kmock.ResourceInfo]:
    """The resources every `EmulatedCluster` serves (fresh objects: `ResourceInfo` is mutable).

    Kopf needs `v1/namespaces`, `v1/events` and the CRDs in discovery (it waits silently for them
    otherwise); it does not use `coordination.k8s.io` leases (its peering uses its own CRDs, and
    `--standalone` turns peering off), so they are not declared: `EmulatedCluster.declare` adds
    any other resource."""

    def info(
        kind: str,
        *,
        namespaced: bool = True,
        shortnames: Iterable[str] = (),
        subresources: Iterable[str] = (),
    ) -> kmock.ResourceInfo:
        return kmock.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=namespaced,
            verbs=set(ALL_VERBS),
            shortnames=set(shortnames),
            subresources=set(subresources),
        )

    return {
        f"{GROUP}/{VERSION}/imagejobs": info(
            "ImageJob", shortnames={"ij"}, subresources={"status"}
        ),
        f"{GROUP}/{VERSION}/creditbindings": info(
            "CreditBinding", shortnames={"cb"}, subresources={"status"}
        ),
        f"{GROUP}/{VERSION}/workerpools": info("WorkerPool", subresources={"status"}),
        "v1/namespaces": info(
            "Namespace", namespaced=False, shortnames={"ns"}, subresources={"status"}
        ),
        "v1/events": info("Event", shortnames={"ev"}),
        "v1/pods": info("Pod", shortnames={"po"}, subresources={"status"}),
        "apps/v1/deployments": info(
            "Deployment", shortnames={"deploy"}, subresources={"status", "scale"}
        ),
        "apiextensions.k8s.io/v1/customresourcedefinitions": info(
            "CustomResourceDefinition",
            namespaced=False,
            shortnames={"crd", "crds"},
            subresources={"status"},
        ),
    }


# ------------------------------------------------------------------------------------------------
# Helpers: errors, timestamps, patches, selectors.

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what the apiserver uses for generateName suffixes
_RESTORED_METADATA = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "resourceVersion",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
# Built-in API groups: their DELETE answers a Status unless noted in _RETURNS_DELETED_OBJECT.
_BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "coordination.k8s.io",
        "events.k8s.io",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "discovery.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
    }
)
_RETURNS_DELETED_OBJECT = frozenset({("", "pods"), ("", "services"), ("", "namespaces")})

# kmock 0.8 parses `/api/v1/namespaces/X` as "namespace X, no resource" and fails on
# `/api/v1/namespaces`; such paths are rewritten to a parseable one in a sentinel namespace.
_NAMESPACES_PATH = re.compile(r"/api/v1/namespaces(?:/[^/]+(?:/(?:status|finalize))?)?/?")
_CLUSTER_SCOPE = "~cluster-scope~"
_REWRITTEN_PREFIX = f"/api/v1/namespaces/{_CLUSTER_SCOPE}/namespaces"
_CORE_NAMESPACES = kmock.resource("", "v1", "namespaces")


def _error(status: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details=details)


def _not_found(resource: kmock.resource, name: str | None) -> kmock.KubernetesError:
    what = f"{resource.plural}.{resource.group}" if resource.group else f"{resource.plural}"
    return _error(404, "NotFound", f'{what} "{name}" not found', name=name, kind=resource.plural)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (`null` removes a key; lists and scalars are replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _split_selector(text: str) -> list[str]:
    """Split a selector on the commas that are not inside `in (a,b)` parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


_LABEL_REQUIREMENT = re.compile(
    r"(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9_.-]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?"
)


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether labels match a label selector (`a=b,c!=d,e in (f,g),h notin (i),j,!k`)."""
    for requirement in _split_selector(selector):
        match = _LABEL_REQUIREMENT.fullmatch(requirement)
        if match is None:
            raise _error(400, "BadRequest", f"unable to parse requirement: {requirement!r}")
        key = match["key"]
        if match["neg"]:
            ok = key not in labels
        elif match["op"] in ("=", "=="):
            ok = labels.get(key) == match["value"]
        elif match["op"] == "!=":
            ok = labels.get(key) != match["value"]
        elif match["setop"]:
            values = {value.strip() for value in match["values"].split(",")}
            ok = (
                labels.get(key) in values
                if match["setop"] == "in"
                else (labels.get(key) not in values)
            )
        else:
            ok = key in labels
        if not ok:
            return False
    return True


def field_selector_matches(selector: str, obj: Mapping[str, Any]) -> bool:
    """Whether an object matches a field selector (`metadata.name=x,status.phase!=Done`)."""
    for requirement in _split_selector(selector):
        match = re.fullmatch(r"([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)", requirement)
        if match is None:
            raise _error(400, "BadRequest", f"invalid field selector: {requirement!r}")
        path, op, expected = match.groups()
        value = _lookup(obj, path)
        actual = (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )
        if (actual == expected) != (op in ("=", "==")):
            return False
    return True


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """A `LabelSelector` object (`matchLabels`, `matchExpressions`) as its string form."""
    if not selector:
        return ""
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(sorted(expression.get("values") or []))
        parts.append(
            f"{key} in ({values})"
            if operator == "In"
            else f"{key} notin ({values})"
            if operator == "NotIn"
            else f"{key}"
            if operator == "Exists"
            else f"!{key}"
        )
    return ",".join(parts)


def _scale_view(obj: Body) -> Body:
    """The `autoscaling/v1` Scale of a Deployment."""
    metadata = obj.get("metadata", {})
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in metadata
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": status.get("replicas", 0),
            "selector": format_label_selector(spec.get("selector")),
        },
    }


def _header(request: kmock.Request, name: str) -> str:
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return ""


# ------------------------------------------------------------------------------------------------
# The emulator.


@attrs.frozen
class _Change:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    object: Body


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's `KubernetesEmulator` with the API server's semantics kmock 0.8 lacks (see module).

    The objects stay in kmock's `objects` array (with their history of versions; a deleted
    object's last version is followed by `None`); reactions added with kmock's DSL
    (`emulator["patch", kmock.resource(...)] << 500`) still take precedence over the emulation,
    and, as in kmock, the write they intercept still happens."""

    history_limit: int = 10_000  # watch events kept per resource; older resourceVersions get 410
    bookmark_interval: float = 30.0  # seconds between BOOKMARKs in watches that allow them

    _revision: int = attrs.field(default=0, init=False)
    _changes: dict[kmock.resource, list[_Change]] = attrs.field(factory=dict, init=False)
    _expired: dict[kmock.resource, int] = attrs.field(factory=dict, init=False)
    _outcomes: dict[kmock.Request, tuple[int, Body]] = attrs.field(factory=dict, init=False)
    _changed: asyncio.Condition | None = attrs.field(default=None, init=False)
    _closing: bool = attrs.field(default=False, init=False)
    _watching: dict[kmock.resource, int] = attrs.field(factory=dict, init=False)

    # -- plumbing ---------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if _NAMESPACES_PATH.fullmatch(raw_request.path):
            path = raw_request.path.rstrip("/")
            rewritten = _REWRITTEN_PREFIX + path[len("/api/v1/namespaces") :]
            rel_url = raw_request.rel_url.with_path(rewritten).with_query(raw_request.rel_url.query)
            raw_request = raw_request.clone(rel_url=rel_url)
        return await super().__call__(raw_request)

    def _normalize(self, request: kmock.Request) -> kmock.Request:
        fixed = request
        if request.resource == _CORE_NAMESPACES and request.namespace == _CLUSTER_SCOPE:
            path = "/api/v1/namespaces" + request.url.path[len(_REWRITTEN_PREFIX) :]
            url = request.url.with_path(path).with_query(request.url.query)
            fixed = attrs.evolve(fixed, namespace=None, url=url)
        if fixed.method == kmock.method.PUT and fixed.resource is not None and fixed.name:
            fixed = attrs.evolve(fixed, action=kmock.action.UPDATE)
        requests = self._requests
        if (
            fixed is not request
            and 0 <= request.id < len(requests)
            and requests[request.id] is request
        ):
            requests[request.id] = fixed  # what tests see when they look at the requests
        return fixed

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition(self._lock)
        return self._changed

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        request = self._normalize(request)
        writes = (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE)
        if request.resource is None or request.action not in writes:
            return await kmock.RawHandler._handle(self, request)
        if request.resource.plural is None:
            raise _error(405, "MethodNotAllowed", "the server does not allow this method")
        content_type = _header(request, "Content-Type").split(";")[0].strip().lower()
        if request.action == kmock.action.CREATE:
            outcome = await self.create_object(request.resource, request.data, request.namespace)
        elif request.action == kmock.action.DELETE:
            outcome = await self.delete_object(
                request.resource,
                request.namespace,
                request.name or "",
                request.data,
                subresource=request.subresource,
            )
        else:
            if content_type.startswith("application/apply-patch"):
                raise _error(415, "UnsupportedMediaType", "server-side apply is not emulated")
            json_patch = content_type == "application/json-patch+json" or (
                isinstance(request.data, list) and not content_type.endswith("merge-patch+json")
            )
            mode = (
                "replace" if request.method == kmock.method.PUT else
                "json" if json_patch else
                "merge"
            )  # fmt: skip
            outcome = await self.update_object(
                request.resource, request.namespace, request.name or "", request.data,
                mode=mode, subresource=request.subresource,
            )  # fmt: skip
        self._outcomes[request] = outcome
        try:
            return await kmock.RawHandler._handle(self, request)  # user reactions, then fallbacks
        finally:
            self._outcomes.pop(request, None)

    def _respond(self, request: kmock.Request) -> Response:
        status, body = self._outcomes[request]
        return Response(status=status, payload=body)

    async def _serve_create(self, request: kmock.Request) -> kmock.Payload:
        return self._respond(request)

    async def _serve_update(self, request: kmock.Request) -> kmock.Payload:
        return self._respond(request)

    async def _serve_delete(self, request: kmock.Request) -> kmock.Payload:
        return self._respond(request)

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        payload = await super()._serve_version(request)
        if isinstance(payload, dict) and payload.get("groupVersion") == "/v1":
            payload["groupVersion"] = "v1"  # kmock 0.8 says "/v1" for the core API
        return payload

    def info(self, resource: kmock.resource) -> kmock.ResourceInfo:
        """The declared resource's info, or a 404 (kmock would serve undeclared resources)."""
        if resource.plural is None or resource not in self.resources:
            raise _error(404, "NotFound", "the server could not find the requested resource")
        return self.resources[resource]

    def _api_version(self, resource: kmock.resource) -> str:
        return f"{resource.group}/{resource.version}" if resource.group else f"{resource.version}"

    def _kind(self, resource: kmock.resource) -> str:
        return self.info(resource).kind or str(resource.plural).capitalize()

    def _live(self, resource: kmock.resource, namespace: str | None, name: str) -> Body | None:
        key = (resource, namespace, name)
        if key not in self._objects:
            return None
        obj = self._objects[key]
        if obj.deleted:
            return None
        live = copy.deepcopy(obj.raw)
        live.setdefault("metadata", {})  # objects put into `objects` directly may lack it
        return live

    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    def _record(self, resource: kmock.resource, type_: str, obj: Body) -> None:
        changes = self._changes.setdefault(resource, [])
        changes.append(_Change(int(obj["metadata"]["resourceVersion"]), type_, copy.deepcopy(obj)))
        if len(changes) > self.history_limit:
            dropped = changes[: len(changes) // 2]
            del changes[: len(changes) // 2]
            self._expired[resource] = dropped[-1].revision
        self._condition().notify_all()

    # -- writes (also usable directly: EmulatedCluster.create/patch/delete) -----------------------

    async def create_object(
        self, resource: kmock.resource, data: Any, namespace: str | None = None
    ) -> tuple[int, Body]:
        """POST: returns (201, the stored object) or raises a `kmock.KubernetesError`."""
        info = self.info(resource)
        if not isinstance(data, dict):
            raise _error(400, "BadRequest", "the body of the request must be a JSON object")
        body = copy.deepcopy(data)
        metadata = body["metadata"] = dict(body.get("metadata") or {})
        if info.namespaced:
            posted = metadata.get("namespace")
            if namespace and posted and posted != namespace:
                raise _error(
                    400, "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )  # fmt: skip
            metadata["namespace"] = namespace or posted
            if not metadata["namespace"]:
                raise _error(400, "BadRequest", "a namespaced resource needs a namespace")
        elif namespace:
            raise _error(404, "NotFound", "the server could not find the requested resource")
        else:
            metadata.pop("namespace", None)
        async with self._lock:
            if not metadata.get("name") and metadata.get("generateName"):
                for _ in range(100):
                    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
                    candidate = f"{metadata['generateName']}{suffix}"
                    if self._live(resource, metadata.get("namespace"), candidate) is None:
                        metadata["name"] = candidate
                        break
            name = metadata.get("name")
            if not name:
                raise _error(
                    422, "Invalid", "metadata.name: Required value: name or generateName is "
                    "required",
                )  # fmt: skip
            key = (resource, metadata.get("namespace"), name)
            if self._live(*key) is not None:
                raise _error(
                    409, "AlreadyExists", f'{resource.plural} "{name}" already exists',
                    name=name, kind=resource.plural,
                )  # fmt: skip
            for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                metadata.pop(field, None)
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = _now()
            metadata["generation"] = 1
            metadata["resourceVersion"] = self._next_revision()
            body = {
                "apiVersion": body.get("apiVersion") or self._api_version(resource),
                "kind": body.get("kind") or self._kind(resource),
                **body,
            }
            if "status" in info.subresources:
                body.pop("status", None)
            if resource == _CORE_NAMESPACES:
                body["status"] = {"phase": "Active"}
            if (resource.group, resource.plural) == ("apps", "deployments"):
                body["spec"] = {"replicas": 1, **(body.get("spec") or {})}
            if key in self._objects:
                self._objects[key].create(copy.deepcopy(body))  # continues a deleted one's history
            else:
                self._objects[key] = copy.deepcopy(body)
            self._record(resource, "ADDED", body)
        return 201, body

    async def update_object(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        data: Any,
        *,
        mode: str = "merge",
        subresource: str | None = None,
    ) -> tuple[int, Body]:
        """PATCH (`mode` "merge" or "json") or PUT (`mode` "replace") of an object or of its
        `status`/`scale` subresource: returns (200, the object or the Scale)."""
        info = self.info(resource)
        if subresource is not None and subresource not in info.subresources & {"status", "scale"}:
            raise _error(404, "NotFound", "the server could not find the requested resource")
        async with self._lock:
            current = self._live(resource, namespace, name)
            if current is None:
                raise _not_found(resource, name)
            base = _scale_view(current) if subresource == "scale" else current
            proposed = self._apply(base, data, mode)
            expected = (
                None if mode == "json" else (data.get("metadata") or {}).get("resourceVersion")
            )
            if expected is not None and str(expected) != current["metadata"].get("resourceVersion"):
                raise _error(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {resource.plural} "{name}": the object has '
                    "been modified; please apply your changes to the latest version and try again",
                    name=name, kind=resource.plural,
                )  # fmt: skip
            if subresource == "scale":
                replicas = (proposed.get("spec") or {}).get("replicas")
                if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                    raise _error(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}")
                new = copy.deepcopy(current)
                new.setdefault("spec", {})["replicas"] = replicas
            elif subresource == "status":
                new = copy.deepcopy(current)
                new.pop("status", None)
                if proposed.get("status") is not None:
                    new["status"] = proposed["status"]
            else:
                new = proposed
                if "status" in info.subresources:
                    new.pop("status", None)
                    if current.get("status") is not None:
                        new["status"] = current["status"]
            new_metadata = new["metadata"] = dict(new.get("metadata") or {})
            old_metadata = current["metadata"]
            for field in _RESTORED_METADATA:
                new_metadata.pop(field, None)
                if field in old_metadata:
                    new_metadata[field] = old_metadata[field]
            new.setdefault("apiVersion", current.get("apiVersion"))
            new.setdefault("kind", current.get("kind"))
            if old_metadata.get("deletionTimestamp"):
                added = set(new_metadata.get("finalizers") or []) - set(
                    old_metadata.get("finalizers") or []
                )
                if added:
                    raise _error(
                        422, "Invalid",
                        f"metadata.finalizers: Forbidden: no new finalizers can be added if the "
                        f"object is being deleted, found new finalizers {sorted(added)!r}",
                    )  # fmt: skip
            if new == current:  # a no-op write: no new resourceVersion, no watch event
                return 200, _scale_view(current) if subresource == "scale" else current

            def essence(obj: Body) -> Body:
                skipped = {"metadata", "status"} if "status" in info.subresources else {"metadata"}
                return {key: value for key, value in obj.items() if key not in skipped}

            if essence(new) != essence(current):
                new_metadata["generation"] = int(old_metadata.get("generation", 0)) + 1
            new_metadata["resourceVersion"] = self._next_revision()
            stored = self._objects[resource, namespace, name]
            stored.history.append(copy.deepcopy(new))
            if new_metadata.get("deletionTimestamp") and not new_metadata.get("finalizers"):
                stored.delete()
                self._record(resource, "DELETED", new)
            else:
                self._record(resource, "MODIFIED", new)
        return 200, _scale_view(new) if subresource == "scale" else new

    async def delete_object(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        options: Any = None,
        *,
        subresource: str | None = None,
    ) -> tuple[int, Body]:
        """DELETE: marks an object with finalizers for deletion, deletes one without them."""
        self.info(resource)
        if subresource is not None:
            raise _error(405, "MethodNotAllowed", "the server does not allow this method")
        preconditions = (
            (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
        )
        async with self._lock:
            current = self._live(resource, namespace, name)
            if current is None:
                raise _not_found(resource, name)
            metadata = current["metadata"]
            for field in ("uid", "resourceVersion"):
                if preconditions.get(field) and preconditions[field] != metadata.get(field):
                    raise _error(
                        409, "Conflict",
                        f"Precondition failed: {field} in precondition: {preconditions[field]}, "
                        f"{field} in object meta: {metadata.get(field)}",
                    )  # fmt: skip
            if metadata.get("deletionTimestamp"):
                return 200, current
            if metadata.get("finalizers"):
                metadata["deletionTimestamp"] = _now()
                metadata["deletionGracePeriodSeconds"] = 0
                metadata["generation"] = int(metadata.get("generation", 0)) + 1
                metadata["resourceVersion"] = self._next_revision()
                self._objects[resource, namespace, name].history.append(copy.deepcopy(current))
                self._record(resource, "MODIFIED", current)
                return 200, current
            metadata["resourceVersion"] = self._next_revision()
            self._objects[resource, namespace, name].delete()
            self._record(resource, "DELETED", current)
        if resource.group in _BUILTIN_GROUPS and (resource.group, resource.plural) not in (
            _RETURNS_DELETED_OBJECT
        ):
            return 200, {
                "apiVersion": "v1",
                "kind": "Status",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": resource.group,
                    "kind": resource.plural,
                    "uid": metadata.get("uid"),
                },
            }
        return 200, current

    @staticmethod
    def _apply(base: Body, data: Any, mode: str) -> Body:
        if mode == "json":
            if not isinstance(data, list):
                raise _error(400, "BadRequest", "a JSON patch must be a list of operations")
            try:
                result = jsonpatch.apply_patch(base, data, in_place=False)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                raise _error(422, "Invalid", f"the JSON patch cannot be applied: {e}") from e
            if not isinstance(result, dict):
                raise _error(422, "Invalid", "the JSON patch must leave an object")
            return result
        if not isinstance(data, dict):
            raise _error(400, "BadRequest", "the body of the request must be a JSON object")
        if mode == "replace":
            return copy.deepcopy(data)
        result = merge_patch(base, data)
        assert isinstance(result, dict)
        return result

    # -- reads ------------------------------------------------------------------------------------

    def _selected(self, request: kmock.Request, obj: Body) -> bool:
        metadata = obj.get("metadata", {})
        if request.namespace is not None and metadata.get("namespace") != request.namespace:
            return False
        if request.name is not None and metadata.get("name") != request.name:
            return False
        labels = request.params.get("labelSelector")
        if labels and not label_selector_matches(labels, metadata.get("labels") or {}):
            return False
        fields = request.params.get("fieldSelector")
        return not fields or field_selector_matches(fields, obj)

    def _current_objects(self, resource: kmock.resource) -> list[Body]:
        objects = [
            self._live(res, namespace, name)
            for (res, namespace, name), obj in self._objects.items()
            if res == resource and not obj.deleted
        ]
        return sorted(
            (obj for obj in objects if obj is not None),
            key=lambda obj: (obj["metadata"].get("namespace") or "", obj["metadata"].get("name")),
        )

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        assert request.resource is not None
        info = self.info(request.resource)
        async with self._lock:
            current = self._live(request.resource, request.namespace, request.name or "")
        if current is None:
            raise _not_found(request.resource, request.name)
        if request.subresource is None:
            return current
        if request.subresource == "status" and "status" in info.subresources:
            return current
        if request.subresource == "scale" and "scale" in info.subresources:
            return _scale_view(current)
        raise _error(404, "NotFound", "the server could not find the requested resource")

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        assert request.resource is not None
        resource = request.resource
        self.info(resource)
        async with self._lock:
            revision = self._revision
            items = [obj for obj in self._current_objects(resource) if self._selected(request, obj)]
        metadata: Body = {"resourceVersion": str(revision)}
        limit = int(request.params.get("limit") or 0)
        token = request.params.get("continue")
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(token))["offset"]) if token else 0
        except (ValueError, KeyError, TypeError) as e:
            raise _error(400, "BadRequest", f"invalid continue token: {token!r}") from e
        if limit > 0 or offset:
            end = offset + limit if limit > 0 else len(items)
            if end < len(items):
                metadata["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"offset": end}).encode()
                ).decode()
                metadata["remainingItemCount"] = len(items) - end
            items = items[offset:end]
        return {
            "apiVersion": self._api_version(resource),
            "kind": f"{self._kind(resource)}List",
            "metadata": metadata,
            "items": items,
        }

    def _bookmark(self, resource: kmock.resource, **annotations: str) -> Body:
        metadata: Body = {"resourceVersion": str(self._revision)}
        if annotations:
            metadata["annotations"] = annotations
        return {
            "type": "BOOKMARK",
            "object": {
                "apiVersion": self._api_version(resource),
                "kind": self._kind(resource),
                "metadata": metadata,
            },
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        assert request.resource is not None
        resource = request.resource
        self.info(resource)
        params = request.params
        since = params.get("resourceVersion") or ""
        initial = params.get("sendInitialEvents") == "true"
        bookmarks = params.get("allowWatchBookmarks") == "true"
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        backlog: list[Body] = []
        async with self._lock:
            if since.isdigit() and int(since) > 0 and not initial:
                position = int(since)
                if position < self._expired.get(resource, 0):
                    backlog.append(
                        {
                            "type": "ERROR",
                            "object": {
                                "apiVersion": "v1",
                                "kind": "Status",
                                "metadata": {},
                                "status": "Failure",
                                "code": 410,
                                "reason": "Expired",
                                "message": f"too old resource version: {since}",
                            },
                        }
                    )
                    position = -1
            else:  # no version (or "0"): the current objects first, as ADDED
                position = self._revision
                backlog = [
                    {"type": "ADDED", "object": obj}
                    for obj in self._current_objects(resource)
                    if self._selected(request, obj)
                ]
                if initial:
                    backlog.append(
                        self._bookmark(resource, **{"k8s.io/initial-events-end": "true"})
                    )

        self._watching[resource] = self._watching.get(resource, 0) + 1
        try:
            yield b""  # send the headers now, even if nothing happens for a while
            for event in backlog:
                yield event
            if position >= 0:
                async for event in self._follow(request, resource, position, deadline, bookmarks):
                    yield event
        finally:
            self._watching[resource] -= 1

    async def _follow(
        self,
        request: kmock.Request,
        resource: kmock.resource,
        position: int,
        deadline: float | None,
        bookmarks: bool,
    ) -> AsyncIterator[Body]:
        loop = asyncio.get_running_loop()
        condition = self._condition()
        while True:
            waits = [self.bookmark_interval] if bookmarks else []
            if deadline is not None:
                waits.append(deadline - loop.time())
            events: list[Body] = []
            bookmark: Body | None = None
            async with self._lock:
                changes = self._changes.setdefault(resource, [])

                def ready(changes: list[_Change] = changes, position: int = position) -> bool:
                    return self._closing or bool(changes and changes[-1].revision > position)

                try:
                    await asyncio.wait_for(
                        condition.wait_for(ready), timeout=max(0.0, min(waits)) if waits else None
                    )
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        return
                    bookmark = self._bookmark(resource)
                else:
                    if self._closing:
                        return
                    if position < self._expired.get(resource, 0):
                        return  # fell behind the kept history: the client re-lists
                    start = bisect.bisect_right(changes, position, key=lambda c: c.revision)
                    for change in changes[start:]:
                        position = change.revision
                        if self._selected(request, change.object):
                            events.append({"type": change.type, "object": change.object})
            if bookmark is not None:
                yield bookmark
            for event in events:
                yield event

    def watching(self, resource: kmock.resource) -> int:
        """How many watch streams of a resource are open right now."""
        return self._watching.get(resource, 0)

    async def shutdown(self) -> None:
        """End every watch stream (so the HTTP server can stop without waiting for them)."""
        async with self._lock:
            self._closing = True
            self._condition().notify_all()

    # -- snapshots for the tests ------------------------------------------------------------------

    async def snapshot(self, resource: kmock.resource, namespace: str | None = None) -> list[Body]:
        self.info(resource)
        async with self._lock:
            return [
                obj
                for obj in self._current_objects(resource)
                if namespace is None or obj["metadata"].get("namespace") == namespace
            ]

    async def fetch(
        self, resource: kmock.resource, namespace: str | None, name: str
    ) -> Body | None:
        self.info(resource)
        async with self._lock:
            return self._live(resource, namespace, name)

    async def versions(
        self, resource: kmock.resource, namespace: str | None, name: str
    ) -> list[Body | None]:
        async with self._lock:
            key = (resource, namespace, name)
            if key not in self._objects:
                return []
            return [
                None if version is None else copy.deepcopy(version.raw)
                for version in self._objects[key].history
            ]


# ------------------------------------------------------------------------------------------------
# The cluster: the emulator on a real port, in a thread of its own.


class _NoInterception:
    """Stands in for kmock.Server's DNS interceptor (see `EmulatedCluster._serve`)."""

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class EmulatedCluster:
    """An `ApiServerEmulator` served by `kmock.Server` on `http://127.0.0.1:PORT` from a thread
    (with its own event loop): usable from sync tests, async tests, threads and subprocesses.

    Start/stop with `with EmulatedCluster() as cluster:` (or `async with`, or `start()`/`stop()`).
    The namespaces in `namespaces` exist from the start. The emulator (`cluster.emulator`) can be
    given kmock reactions before or after the start, e.g. to inject failures."""

    def __init__(self, *, namespaces: Iterable[str] = ("default",), port: int = 0) -> None:
        self.emulator = ApiServerEmulator()
        for key, info in default_resources().items():
            self.emulator.resources[key] = info
        self._namespaces = tuple(namespaces)
        self._requested_port = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        if self._thread is not None:
            raise RuntimeError("The emulated cluster has already been started.")
        self._thread = threading.Thread(target=self._run, name="emulated-kubernetes", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("The emulated Kubernetes API did not start in time.")
        if self._failure is not None:
            raise RuntimeError("The emulated Kubernetes API failed to start.") from self._failure
        return self

    def stop(self, timeout: float = 30.0) -> None:
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None or loop is None or stop_requested is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(stop_requested.set)
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError("The emulated Kubernetes API did not stop in time.")
        if self._failure is not None:
            raise RuntimeError("The emulated Kubernetes API failed.") from self._failure

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # reported by start()/stop()
            self._failure = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        server = kmock.Server(self.emulator, host="127.0.0.1", port=self._requested_port)
        async with self.emulator, server:
            # kmock.Server patches aiohttp's resolver process-wide until it stops, and insists
            # on LIFO stops across all servers in the process (threads included). Clients
            # here connect to 127.0.0.1 directly, so the interception is switched off at once.
            interceptor = server._managed_interceptor
            if interceptor is not None:
                await interceptor.__aexit__(None, None, None)
                server._managed_interceptor = _NoInterception()  # type: ignore[assignment]
            for namespace in self._namespaces:
                await self.emulator.create_object(
                    _CORE_NAMESPACES, {"metadata": {"name": namespace}}
                )
            self._port = server.port
            self._ready.set()
            await self._stop_requested.wait()
            await self.emulator.shutdown()

    def _call(self, factory: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            raise RuntimeError("The emulated cluster is not running.")
        if threading.get_ident() == thread.ident:
            raise RuntimeError("Blocking helpers cannot be called from the emulator's own loop.")

        async def call() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    # -- connection -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("The emulated cluster is not running.")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, path: str | Path, *, namespace: str = "default") -> Path:
        """Write a kubeconfig for this cluster (no auth) and return its path; `path` is a file,
        or a directory to write `kubeconfig.yaml` into. The official client
        (`kubernetes.config.load_kube_config(config_file=...)`) and Kopf (`KUBECONFIG=...`) read it.
        """
        target = Path(path)
        if target.is_dir():
            target = target / "kubeconfig.yaml"
        name = "pixelfleet-emulated"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {}}],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
            ],
            "current-context": name,
            "preferences": {},
        }
        target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return target

    def api_client(self) -> kubernetes.client.ApiClient:
        """An official-client `ApiClient` for this cluster that leaves the global config alone."""
        configuration = kubernetes.client.Configuration(host=self.url)
        return kubernetes.client.ApiClient(configuration)

    def connection_info(self) -> kopf.ConnectionInfo:
        """Kopf's credentials for this cluster (for a `@kopf.on.login` handler)."""
        return kopf.ConnectionInfo(server=self.url, default_namespace="default")

    def kopf_registry(self) -> kopf.OperatorRegistry:
        """A fresh Kopf registry that logs in to this cluster, for an in-process operator:
        `KopfRunner(["run", "-A", "--standalone", path], registry=cluster.kopf_registry())`.

        A fresh `kopf.OperatorRegistry` has none of Kopf's default logins, and the official
        client's `load_kube_config()` (which Kopf's default login calls) reads `KUBECONFIG` once,
        when `kubernetes` is imported, so a `KUBECONFIG` set for an in-process operator comes too
        late. An operator subprocess needs neither: `KUBECONFIG=cluster.kubeconfig(path)`."""
        registry = kopf.OperatorRegistry()

        @kopf.on.login(registry=registry)
        def login_to_the_emulated_cluster(**_: Any) -> kopf.ConnectionInfo:
            return self.connection_info()

        return registry

    def declare(
        self,
        resource: str,
        kind: str,
        *,
        namespaced: bool = True,
        shortnames: Iterable[str] = (),
        subresources: Iterable[str] = (),
    ) -> kmock.resource:
        """Serve one more resource, e.g. `declare("coordination.k8s.io/v1/leases", "Lease")`."""
        parsed = kmock.resource(resource)
        self.emulator.resources[parsed] = kmock.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=namespaced,
            verbs=set(ALL_VERBS),
            shortnames=set(shortnames),
            subresources=set(subresources),
        )
        return parsed

    def resource(self, plural: str) -> kmock.resource:
        """A declared resource by plural ("imagejobs"), short name ("ij"), kind ("ImageJob") or
        full name ("apps/v1/deployments", "imagejobs.v1alpha1.pixelfleet.dev")."""
        if "/" in plural or "." in plural:
            parsed = kmock.resource(plural)
            if parsed in self.emulator.resources:
                return parsed
            raise LookupError(f"No such resource is declared: {plural!r}")
        matches = [
            resource
            for resource in self.emulator.resources
            for info in [self.emulator.resources[resource]]
            if plural in (resource.plural, info.kind) or plural in info.shortnames
        ]
        if len(matches) != 1:
            raise LookupError(f"{plural!r} names {len(matches)} declared resources: {matches!r}")
        return matches[0]

    # -- stored objects ---------------------------------------------------------------------------

    def objects(self, plural: str, namespace: str | None = None) -> list[Body]:
        """The live objects of a resource (copies), in one namespace or all, by namespace/name."""
        resource = self.resource(plural)
        return self._call(lambda: self.emulator.snapshot(resource, namespace))

    def get(self, plural: str, namespace: str | None, name: str) -> Body | None:
        """A live object (a copy), or None; `namespace` is None for cluster-scoped resources."""
        resource = self.resource(plural)
        return self._call(lambda: self.emulator.fetch(resource, namespace, name))

    def history(self, plural: str, namespace: str | None, name: str) -> list[Body | None]:
        """Every stored version of an object, oldest first; `None` marks a deletion."""
        resource = self.resource(plural)
        return self._call(lambda: self.emulator.versions(resource, namespace, name))

    def watching(self, plural: str) -> int:
        """How many watch streams of a resource are open: `cluster.wait(lambda:
        cluster.watching("imagejobs"))` waits until an operator is watching."""
        return self.emulator.watching(self.resource(plural))

    def events(self, namespace: str | None = None, *, involving: str | None = None) -> list[Body]:
        """The core v1 Events posted (in one namespace or all), oldest first; `involving` keeps
        those whose `involvedObject.name` is that name."""
        events = self.objects("v1/events", namespace)
        if involving is not None:
            events = [e for e in events if (e.get("involvedObject") or {}).get("name") == involving]
        return sorted(events, key=lambda event: int(event["metadata"].get("resourceVersion", 0)))

    def create(self, plural: str, body: Mapping[str, Any], namespace: str | None = None) -> Body:
        """Create an object as a client would (events, resourceVersion, 409 on a duplicate)."""
        resource = self.resource(plural)
        data = dict(body)
        return self._call(lambda: self.emulator.create_object(resource, data, namespace))[1]

    def patch(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> Body:
        """Merge-patch an object (or its `status`/`scale`) as a client would, e.g. to play the
        Deployment controller: `cluster.patch("deployments", "ns", "n", {"status": {...}},
        subresource="status")`."""
        resource = self.resource(plural)
        data = dict(patch)
        return self._call(
            lambda: self.emulator.update_object(
                resource, namespace, name, data, mode="merge", subresource=subresource
            )
        )[1]

    def delete(self, plural: str, namespace: str | None, name: str) -> Body:
        """Delete an object as a client would (finalizers honoured)."""
        resource = self.resource(plural)
        return self._call(lambda: self.emulator.delete_object(resource, namespace, name))[1]

    @staticmethod
    def wait(condition: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02) -> T:
        """Poll `condition` until it returns something truthy, and return that (or time out)."""
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Timed out after {timeout}s waiting for {condition!r}.")
            time.sleep(interval)
