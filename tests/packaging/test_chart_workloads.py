"""The chart's workloads as an ops engineer checks them before installing: who runs as whom, what
each pod waits for, how it stops, where its settings and secrets come from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from pixelfleet.settings import Settings
from pixelfleet.worker.names import control_queue
from tests.harness.helm import Helm
from tests.packaging.rendered import (
    CHART,
    FULLNAME,
    NAMESPACE,
    RELEASE,
    ROLES,
    VALUE_SETS,
    Rendered,
    all_containers,
    pod_labels_of,
    pod_spec_of,
    selects,
    value_set_id,
)


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> Rendered:
    return Rendered(helm.template(CHART))


def _render(helm: Helm, values: Path | None = None, **set_values: Any) -> Rendered:
    files = () if values is None else (values,)
    return Rendered(helm.template(CHART, *files, set_values=set_values))


# ---- Security --------------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUE_SETS, ids=value_set_id)
def test_every_container_runs_as_non_root_on_a_read_only_root(
    helm: Helm, values: Path | None
) -> None:
    for workload in _render(helm, values).workloads():
        spec = pod_spec_of(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec["securityContext"]["runAsUser"] > 0
        for container in all_containers(spec):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            writable = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            assert "/tmp" in writable or container["name"] in {"redis"}, container["name"]


def test_every_long_running_container_has_resources(rendered: Rendered) -> None:
    for workload in rendered.workloads():
        for container in all_containers(pod_spec_of(workload)):
            if workload["kind"] == "Pod":  # the helm test
                continue
            resources = container.get("resources", {})
            assert resources.get("requests"), container["name"]
            assert resources.get("limits", {}).get("memory"), container["name"]


def test_only_the_api_beat_and_operator_and_its_uninstall_hook_get_a_kubernetes_token(
    rendered: Rendered,
) -> None:
    for workload in rendered.workloads():
        spec = pod_spec_of(workload)
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in {"api", "beat", "operator", "release-imagejobs"}:
            assert spec["serviceAccountName"] in {f"{FULLNAME}-app", f"{FULLNAME}-operator"}
            assert spec.get("automountServiceAccountToken", True) is True
        else:
            assert spec["automountServiceAccountToken"] is False, component
            assert spec.get("serviceAccountName") in {None, f"{FULLNAME}-worker"}, component


# ---- Settings and secrets --------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUE_SETS, ids=value_set_id)
def test_the_env_names_the_chart_sets_are_settings_the_code_reads(
    helm: Helm, values: Path | None
) -> None:
    readable = {f"PIXELFLEET_{name.upper()}" for name in Settings.model_fields}
    for workload in _render(helm, values).workloads():
        for container in all_containers(pod_spec_of(workload)):
            names = {
                e["name"] for e in container.get("env", []) if e["name"].startswith("PIXELFLEET_")
            }
            assert names <= readable, (container["name"], names - readable)


@pytest.mark.parametrize("values", VALUE_SETS, ids=value_set_id)
def test_every_secret_a_pod_reads_is_the_charts_or_one_the_values_name(
    helm: Helm, values: Path | None
) -> None:
    rendered = _render(helm, values)
    [chart_secret] = rendered.of_kind("Secret")
    keys_of = {chart_secret["metadata"]["name"]: set(chart_secret["data"])}
    declared = yaml_values(values)
    named = {
        declared.get("externalDatabase", {}).get("existingSecret"),
        declared.get("razorpay", {}).get("existingSecret"),
        declared.get("mail", {}).get("existingSecret"),
        declared.get("storage", {}).get("s3", {}).get("existingSecret"),
        declared.get("externalRedis", {}).get("existingSecret"),
    } - {None, ""}
    for workload in rendered.workloads():
        for container in all_containers(pod_spec_of(workload)):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref is None:
                    continue
                if ref["name"] in keys_of:
                    assert ref["key"] in keys_of[ref["name"]], (container["name"], ref)
                else:
                    assert ref["name"] in named, (container["name"], ref)


def yaml_values(values: Path | None) -> dict[str, Any]:
    import yaml

    return {} if values is None else dict(yaml.safe_load(values.read_text()))


def test_the_database_and_redis_urls_point_at_the_charts_servers(rendered: Rendered) -> None:
    env = rendered.env("api")
    url = make_url(env["PIXELFLEET_DATABASE_URL"]["value"])
    assert url.drivername == "postgresql+asyncpg"
    assert url.host == rendered.one("Service", "postgresql")["metadata"]["name"]
    assert url.password is None  # it comes from the Secret, apart from the URL
    assert env["PIXELFLEET_REDIS_URL"]["value"] == f"redis://{FULLNAME}-redis:6379/0"

    # The servers and the app read their passwords from the same Secret keys.
    postgres = {e["name"]: e for e in rendered.container("postgresql", "StatefulSet")["env"]}
    redis = {e["name"]: e for e in rendered.container("redis", "StatefulSet")["env"]}
    assert (
        postgres["POSTGRES_PASSWORD"]["valueFrom"]
        == env["PIXELFLEET_DATABASE_PASSWORD"]["valueFrom"]
    )
    assert redis["REDIS_PASSWORD"]["valueFrom"] == env["PIXELFLEET_REDIS_PASSWORD"]["valueFrom"]
    assert "$(REDIS_PASSWORD)" in rendered.container("redis", "StatefulSet")["args"]


def test_an_external_database_and_redis_are_used_as_configured(helm: Helm) -> None:
    database = _render(helm, CHART / "ci" / "external-database-values.yaml")
    env = database.env("worker")
    url = make_url(env["PIXELFLEET_DATABASE_URL"]["value"])
    assert url.host == "pixelfleet.cluster-abc123.eu-west-1.rds.amazonaws.com"
    assert url.query == {"ssl": "require"}
    assert env["PIXELFLEET_DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "pixelfleet-database",
        "key": "password",
    }
    assert env["PIXELFLEET_STORAGE_URL"]["value"] == "s3://pixelfleet-images/prod"
    assert not database.of_kind("PersistentVolumeClaim")  # S3 needs no shared volume
    assert "database-password" not in database.of_kind("Secret")[0]["data"]
    assert all(
        m["metadata"]["labels"]["app.kubernetes.io/component"] != "postgresql"
        for m in database.manifests
    )

    redis = _render(helm, CHART / "ci" / "external-redis-values.yaml")
    env = redis.env("api")
    assert env["PIXELFLEET_REDIS_URL"]["value"] == "rediss://redis.internal.example.com:6380/2"
    assert env["PIXELFLEET_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "redis-password"
    assert not [s for s in redis.of_kind("StatefulSet") if s["metadata"]["name"].endswith("-redis")]


def test_mail_goes_through_the_smtp_server_the_values_name_from_a_secret(helm: Helm) -> None:
    import base64

    smtp = "smtp://mailer:s3cret@smtp.acme.example:587"
    rendered = _render(
        helm,
        config={"publicUrl": "https://img.acme.example"},
        mail={"smtpUrl": smtp, "from": "Acme <no-reply@acme.example>", "productName": "Acme"},
    )
    [secret] = rendered.of_kind("Secret")
    assert base64.b64decode(secret["data"]["smtp-url"]).decode() == smtp
    for role in ("api", "worker"):
        env = rendered.env(role)
        assert env["PIXELFLEET_SMTP_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": secret["metadata"]["name"],
            "key": "smtp-url",
        }
        assert "value" not in env["PIXELFLEET_SMTP_URL"]  # never in the pod spec itself
        assert env["PIXELFLEET_MAIL_FROM"]["value"] == "Acme <no-reply@acme.example>"
        assert env["PIXELFLEET_PRODUCT_NAME"]["value"] == "Acme"
        assert env["PIXELFLEET_PUBLIC_URL"]["value"] == "https://img.acme.example"
        assert env["PIXELFLEET_REQUIRE_EMAIL_VERIFICATION"]["value"] == "false"

    own = _render(helm, mail={"existingSecret": "acme-smtp"}).env("api")
    assert own["PIXELFLEET_SMTP_URL"]["valueFrom"]["secretKeyRef"]["name"] == "acme-smtp"
    default = _render(helm).env("api")
    assert "PIXELFLEET_SMTP_URL" not in default
    assert "smtp-url" not in _render(helm).of_kind("Secret")[0]["data"]


def test_given_secrets_are_used_and_missing_ones_generated(helm: Helm) -> None:
    import base64

    given = "g" * 40
    [secret] = _render(helm, secrets={"jwtSecret": given}).of_kind("Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["jwt-secret"] == given
    assert len(data["webhook-secret"]) == 64
    assert data["webhook-secret"] != given
    assert len(data["database-password"]) == 32
    assert data["database-password"].isalnum()
    [again] = _render(helm).of_kind("Secret")
    assert again["data"]["database-password"] != secret["data"]["database-password"]


def test_the_secret_exists_before_the_migration_hook_and_outlives_the_release(helm: Helm) -> None:
    """A hook: made before the migration hook, and left behind by `helm uninstall`."""
    rendered = _render(helm, CHART / "ci" / "external-database-values.yaml")
    [secret] = rendered.of_kind("Secret")
    job = _job(rendered)
    hooks = secret["metadata"]["annotations"]
    assert set(hooks["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert int(hooks["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    template = (CHART / "templates" / "secret.yaml").read_text()
    assert "lookup" in template  # the values in the cluster win over new random ones


# ---- Migrations -------------------------------------------------------------------------------


def _job(rendered: Rendered) -> dict[str, Any]:
    """The migrations' Job."""
    [job] = [
        j
        for j in rendered.of_kind("Job")
        if j["metadata"]["labels"]["app.kubernetes.io/component"].startswith("migrate")
    ]
    return job


def test_with_an_external_database_migrations_run_before_install_and_upgrade(helm: Helm) -> None:
    job = _job(_render(helm, CHART / "ci" / "external-database-values.yaml"))
    hooks = job["metadata"]["annotations"]
    assert set(hooks["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in hooks["helm.sh/hook-delete-policy"]
    [container] = pod_spec_of(job)["containers"]
    assert container["args"][:2] == ["migrate", "--wait"]


def test_with_the_charts_postgresql_the_first_install_migrates_once_it_is_up(
    helm: Helm, rendered: Rendered
) -> None:
    # No hook: a pre-install hook would wait for a database the release has not created yet.
    job = _job(rendered)
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})
    assert pod_spec_of(job)["containers"][0]["args"][:2] == ["migrate", "--wait"]
    upgrade = _job(Rendered(helm.template(CHART, extra_args=["--is-upgrade"])))
    assert upgrade["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert upgrade["metadata"]["name"] != job["metadata"]["name"]


def test_every_role_waits_for_the_schema_before_it_starts(rendered: Rendered) -> None:
    for role in ROLES:
        [wait] = rendered.pod_spec("Deployment", role)["initContainers"]
        # The code's schema or a newer one: during a rolling upgrade, the hook has migrated
        # past the old pods, which must still start if they are rescheduled.
        assert wait["args"][:4] == ["migrate", "--check", "--allow-newer", "--wait"], role
        assert {e["name"] for e in wait["env"]} >= {
            "PIXELFLEET_DATABASE_URL",
            "PIXELFLEET_DATABASE_PASSWORD",
        }


# ---- Roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "extra"), [(150, 30), (600, 10)])
def test_a_stopping_worker_gets_the_hard_time_limit_to_finish(
    helm: Helm, limit: int, extra: int
) -> None:
    rendered = _render(
        helm,
        config={"taskTimeLimitSeconds": limit, "taskSoftTimeLimitSeconds": limit - 10},
        worker={"terminationGraceExtraSeconds": extra},
    )
    spec = rendered.pod_spec("Deployment", "worker")
    assert spec["terminationGracePeriodSeconds"] == limit + extra
    env = rendered.env("worker")
    assert env["PIXELFLEET_TASK_TIME_LIMIT_SECONDS"]["value"] == str(limit)
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_the_workerpool_owns_the_worker_count_when_autoscaling(
    helm: Helm, rendered: Rendered
) -> None:
    worker = rendered.one("Deployment", "worker")
    assert "replicas" not in worker["spec"]  # an upgrade must not reset what the pool chose
    pool = rendered.one("WorkerPool", "worker")
    assert pool["spec"]["deployment"] == worker["metadata"]["name"]
    assert pool["spec"]["queue"] == rendered.env("worker")["PIXELFLEET_CELERY_QUEUE"]["value"]

    fixed = _render(helm, CHART / "ci" / "no-autoscaling-values.yaml")
    assert not fixed.of_kind("WorkerPool")
    assert fixed.one("Deployment", "worker")["spec"]["replicas"] == 3
    assert "--concurrency=2" in fixed.container("worker")["args"]


def test_each_queue_in_the_values_gets_its_own_workers_and_workerpool(helm: Helm) -> None:
    rendered = _render(
        helm,
        worker={
            "queues": [
                {
                    "name": "large",
                    "concurrency": 1,
                    "resources": {"limits": {"memory": "7Gi"}},
                    "nodeSelector": {"pixelfleet.dev/pool": "large"},
                    "autoscaling": {"minReplicas": 0, "maxReplicas": 4},
                }
            ]
        },
    )

    default, large = rendered.container("worker"), rendered.container("worker-large")
    assert "--queues=large" in large["args"]
    assert "--concurrency=1" in large["args"]
    assert "--queues=pixelfleet" in default["args"]
    assert "--concurrency=2" in default["args"]
    # What the queue sets is its own; the rest is the default workers'.
    assert large["resources"]["limits"]["memory"] == "7Gi"
    assert large["resources"]["requests"] == default["resources"]["requests"]
    spec = rendered.pod_spec("Deployment", "worker-large")
    assert spec["nodeSelector"] == {"pixelfleet.dev/pool": "large"}
    assert spec["serviceAccountName"] == f"{FULLNAME}-worker"
    assert "nodeSelector" not in rendered.pod_spec("Deployment", "worker")

    pools = {p["spec"]["queue"]: p["spec"] for p in rendered.of_kind("WorkerPool")}
    assert pools["large"]["deployment"] == f"{FULLNAME}-worker-large"
    assert (pools["large"]["minReplicas"], pools["large"]["maxReplicas"]) == (0, 4)
    assert (pools["pixelfleet"]["minReplicas"], pools["pixelfleet"]["maxReplicas"]) == (1, 10)
    disruption = {p["metadata"]["name"] for p in rendered.of_kind("PodDisruptionBudget")}
    assert f"{FULLNAME}-worker-large" in disruption


def test_a_queue_name_must_be_one_a_deployment_can_carry(helm: Helm) -> None:
    with pytest.raises(RuntimeError, match="queues"):
        _render(helm, worker={"queues": [{"name": "Not_A_Name"}]})


def test_uninstalling_first_lets_go_of_every_imagejob_with_the_operators_account(
    helm: Helm,
) -> None:
    rendered = _render(helm, CHART / "ci" / "queues-values.yaml")
    [hook] = [
        j
        for j in rendered.of_kind("Job")
        if j["metadata"]["labels"]["app.kubernetes.io/component"] == "release-imagejobs"
    ]
    annotations = hook["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-delete"
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    spec = pod_spec_of(hook)
    assert spec["serviceAccountName"] == f"{FULLNAME}-operator"
    [container] = spec["containers"]
    assert container["args"] == [
        "release-imagejobs",
        "--namespace",
        NAMESPACE,
        "--namespace",
        "team-a",
        "--operator-deployment",
        f"{FULLNAME}-operator",
        "--wait-seconds",
        "60",
    ]
    assert rendered.one("Deployment", "operator")["metadata"]["name"] == f"{FULLNAME}-operator"


def test_beat_and_the_operator_never_run_twice(rendered: Rendered) -> None:
    for role in ("beat", "operator"):
        spec = rendered.one("Deployment", role)["spec"]
        assert spec["replicas"] == 1
        assert spec["strategy"]["type"] == "Recreate", role


def test_the_operator_watches_its_namespace_and_answers_its_liveness_probe(
    rendered: Rendered,
) -> None:
    operator = rendered.container("operator")
    assert operator["args"] == ["operator", "--namespace", NAMESPACE]
    port = int(rendered.env("operator")["PIXELFLEET_OPERATOR_LIVENESS_PORT"]["value"])
    [declared] = [p for p in operator["ports"] if p["containerPort"] == port]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": declared["name"]}


def test_every_worker_is_probed_where_its_consumer_loop_answers(helm: Helm) -> None:
    rendered = _render(helm, CHART / "ci" / "queues-values.yaml")
    for component in ("worker", "worker-large"):
        worker = rendered.container(component)
        port = int(rendered.env(component)["PIXELFLEET_WORKER_METRICS_PORT"]["value"])
        [declared] = [p for p in worker["ports"] if p["containerPort"] == port]
        probe = worker["livenessProbe"]
        assert probe["httpGet"] == {"path": "/healthz", "port": declared["name"]}
        # Restarted only after the loop has been still for several periods.
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 60


def test_the_api_is_probed_for_liveness_and_readiness(rendered: Rendered) -> None:
    api = rendered.container("api")
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--host" in api["args"]
    assert "0.0.0.0" in api["args"]
    port = int(api["args"][api["args"].index("--port") + 1])
    assert api["ports"] == [{"name": "http", "containerPort": port}]


def test_the_launchers_are_the_ones_each_role_needs(rendered: Rendered) -> None:
    containers = [("api", None), ("worker", None), ("beat", "beat"), ("beat", "control")]
    containers.append(("operator", None))
    launchers = {
        (role, name): rendered.env(role, name=name)["PIXELFLEET_LAUNCHER"]["value"]
        for role, name in containers
    }
    # Task workers only process tasks; they never create ImageJobs, so they need no cluster
    # access. The control worker re-dispatches stale tasks, which creates their ImageJobs.
    assert launchers == {
        ("api", None): "kubernetes",
        ("worker", None): "celery",
        ("beat", "beat"): "kubernetes",
        ("beat", "control"): "kubernetes",
        ("operator", None): "kubernetes",
    }


def test_upkeep_runs_beside_beat_so_workers_scaled_to_zero_stop_nothing(
    helm: Helm,
) -> None:
    rendered = _render(helm, config={"celeryQueue": "images"}, autoscaling={"minReplicas": 0})
    assert rendered.container("worker")["args"][:2] == ["worker", "--queues=images"]
    control = rendered.container("beat", name="control")
    assert control["args"][:2] == ["worker", f"--queues={control_queue('images')}"]
    assert rendered.pod_spec("Deployment", "beat")["serviceAccountName"] == f"{FULLNAME}-app"
    assert rendered.one("Deployment", "beat")["spec"]["replicas"] == 1


# ---- Services, disruption budgets, volumes, the helm test -------------------------------------


@pytest.mark.parametrize("values", VALUE_SETS, ids=value_set_id)
def test_every_service_selects_one_workload_and_a_port_it_declares(
    helm: Helm, values: Path | None
) -> None:
    rendered = _render(helm, values)
    for service in rendered.of_kind("Service"):
        selector = service["spec"]["selector"]
        targets = [w for w in rendered.workloads() if selects(selector, pod_labels_of(w))]
        targets = [w for w in targets if w["kind"] in {"Deployment", "StatefulSet"}]
        assert len(targets) == 1, service["metadata"]["name"]
        ports = {
            p["name"] for c in pod_spec_of(targets[0])["containers"] for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)


def test_disruption_budgets_cover_the_api_and_the_workers(rendered: Rendered) -> None:
    for role in ("api", "worker"):
        budget = rendered.one("PodDisruptionBudget", role)
        labels = pod_labels_of(rendered.one("Deployment", role))
        assert selects(budget["spec"]["selector"]["matchLabels"], labels)
        assert budget["spec"]["maxUnavailable"] >= 1  # a node drain can always proceed


def test_the_ingress_routes_to_the_api_service(helm: Helm) -> None:
    rendered = _render(helm, CHART / "ci" / "ingress-values.yaml")
    ingress = rendered.one("Ingress", "api")
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = rendered.one("Service", "api")
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert ingress["spec"]["tls"][0]["hosts"] == ["images.example.com"]


def test_the_api_and_workers_share_the_files_volume_and_the_servers_keep_theirs(
    rendered: Rendered,
) -> None:
    [claim] = rendered.of_kind("PersistentVolumeClaim")
    # The control worker deletes expired files; beat and the operator never touch them.
    for role, name in (("api", None), ("worker", None), ("beat", "control")):
        volumes = {v["name"]: v for v in rendered.pod_spec("Deployment", role)["volumes"]}
        assert volumes["files"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        container = rendered.container(role, name=name)
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["files"] == "/var/lib/pixelfleet/files"
    for role, name in (("beat", "beat"), ("operator", None)):
        mounts = {m["name"] for m in rendered.container(role, name=name)["volumeMounts"]}
        assert "files" not in mounts, role
    assert "files" not in {
        v["name"] for v in rendered.pod_spec("Deployment", "operator")["volumes"]
    }
    assert rendered.env("api")["PIXELFLEET_STORAGE_URL"]["value"] == (
        "file:///var/lib/pixelfleet/files"
    )
    for server in ("postgresql", "redis"):
        [template] = rendered.one("StatefulSet", server)["spec"]["volumeClaimTemplates"]
        assert template["metadata"]["name"] == "data"


def test_the_helm_test_runs_the_smoke_test_against_the_api_service(rendered: Rendered) -> None:
    [pod] = rendered.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    [container] = pod["spec"]["containers"]
    service = rendered.one("Service", "api")
    url = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert container["args"][:2] == ["smoke-test", url]
    assert pod["metadata"]["name"] == f"{RELEASE}-pixelfleet-smoke-test"


def _pinned_to_the_files_node(rendered: Rendered, role: str) -> bool:
    spec = rendered.pod_spec("Deployment", role)
    terms = (
        spec.get("affinity", {})
        .get("podAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", [])
    )
    labels = pod_labels_of(rendered.one("Deployment", role))
    return any(
        term["topologyKey"] == "kubernetes.io/hostname"
        and selects(term["labelSelector"]["matchLabels"], labels)
        and "pixelfleet.dev/files-volume" in term["labelSelector"]["matchLabels"]
        for term in terms
    )


def test_pods_sharing_a_read_write_once_volume_are_kept_on_its_node(helm: Helm) -> None:
    rendered = _render(
        helm,
        api={
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 1,
                            "preference": {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a"]}
                                ]
                            },
                        }
                    ]
                }
            }
        },
    )
    for role in ("api", "worker", "beat"):
        assert _pinned_to_the_files_node(rendered, role), role
    assert not _pinned_to_the_files_node(rendered, "operator")
    # The user's own affinity is kept beside it.
    assert "nodeAffinity" in rendered.pod_spec("Deployment", "api")["affinity"]

    shared = _render(helm, storage={"files": {"accessModes": ["ReadWriteMany"]}})
    s3 = _render(helm, CHART / "ci" / "external-database-values.yaml")
    for role in ("api", "worker", "beat"):
        assert not _pinned_to_the_files_node(shared, role), role
        assert not _pinned_to_the_files_node(s3, role), role


@pytest.mark.parametrize("values", VALUE_SETS, ids=value_set_id)
def test_every_containers_env_is_accepted_by_the_settings(
    helm: Helm, values: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Literal values as rendered (large numbers included), secrets as a stand-in: a value
    the code refuses would crash every pod."""
    rendered = _render(helm, values)
    big = _render(
        helm,
        values,
        config={
            "imagejobTtlSeconds": 2_592_000,
            "signupCredits": 1_000_000,
            "maxUploadBytes": 104_857_600,
        },
    )
    for source in (rendered, big):
        for workload in source.workloads():
            for container in all_containers(pod_spec_of(workload)):
                env = {
                    e["name"]: e.get("value", "s" * 48)
                    for e in container.get("env", [])
                    if e["name"].startswith("PIXELFLEET_")
                }
                if not env:
                    continue
                with monkeypatch.context() as patch:
                    for name in list(os.environ):
                        if name.startswith("PIXELFLEET_"):
                            patch.delenv(name)
                    for name, value in env.items():
                        patch.setenv(name, value)
                    settings = Settings()
                assert settings.env == "production"
                if source is big:
                    assert settings.imagejob_ttl_seconds == 2_592_000
                    assert settings.signup_credits == 1_000_000
                    assert settings.max_upload_bytes == 104_857_600
