"""The guides in docs/ name only things that exist: settings the code reads, commands and
options of the `pixelfleet` command line, metrics it exports, chart values, custom resource names,
and headings they link to. A guide that describes something the code does not have fails here."""

from __future__ import annotations

import re

import pytest

from pixelfleet import row_security
from pixelfleet.operator import resources
from tests.docs.guides import (
    GUIDES,
    METRIC_NAME,
    SET_VALUE,
    SETTING_NAME,
    all_guides,
    anchors,
    code_of,
    environment_names,
    exported_metric_names,
    guide_text,
    invocations,
    is_chart_value,
    option_names,
    resolve,
    value_paths,
    values_snippets,
)


@pytest.mark.parametrize("guide", GUIDES)
def test_every_setting_the_guides_name_exists(guide: str) -> None:
    named = set(SETTING_NAME.findall(guide_text(guide)))
    assert named, guide
    assert named <= environment_names(), sorted(named - environment_names())


def test_the_setting_check_knows_the_names_read_outside_the_settings() -> None:
    known = environment_names()
    assert {"PIXELFLEET_JWT_SECRET", "PIXELFLEET_LOG_LEVEL", "PIXELFLEET_SMOKE_EMAIL"} <= known
    assert "PIXELFLEET_JWT_KEY" not in known


@pytest.mark.parametrize("guide", GUIDES)
def test_every_metric_the_guides_name_is_exported(guide: str) -> None:
    # The database role of row-level security shares the prefix; it is no metric.
    named = set(METRIC_NAME.findall(guide_text(guide))) - {row_security.API_ROLE}
    assert named <= exported_metric_names(), sorted(named - exported_metric_names())


@pytest.mark.parametrize("guide", GUIDES)
def test_every_pixelfleet_command_the_guides_run_exists_with_its_options(guide: str) -> None:
    for invocation in invocations(code_of(guide_text(guide))):
        path, command, options = resolve(invocation)
        assert path, invocation.text
        unknown = set(options) - option_names(command)
        assert not unknown, f"{invocation.text}: no option {sorted(unknown)} on {' '.join(path)}"


def test_the_guides_show_every_command_an_operator_needs() -> None:
    run = {
        resolve(invocation)[0]
        for text in all_guides().values()
        for invocation in invocations(code_of(text))
    }
    for path in (
        ("up",),
        ("migrate",),
        ("smoke-test",),
        ("admin", "create-user"),
        ("admin", "audit"),
    ):
        assert path in run, path


def test_the_command_check_would_catch_a_made_up_command_or_option() -> None:
    [made_up] = invocations("pixelfleet upgrade-db --now")
    with pytest.raises(KeyError):
        resolve(made_up)
    [bad_option] = invocations("pixelfleet migrate --force")
    path, command, _options = resolve(bad_option)
    assert path == ("migrate",)
    assert "--force" not in option_names(command)
    # Release and namespace names are not invocations.
    assert not invocations("helm install pixelfleet charts/pixelfleet -n pixelfleet --wait")
    assert not invocations("kubectl -n pixelfleet get pods")


@pytest.mark.parametrize("guide", GUIDES)
def test_every_chart_value_the_guides_set_is_in_values_yaml(guide: str) -> None:
    text = guide_text(guide)
    for key in SET_VALUE.findall(text):
        assert is_chart_value(tuple(key.split("."))), f"--set {key}"
    for snippet in values_snippets(guide):
        for path in value_paths(snippet):
            assert is_chart_value(path), ".".join(path)


def test_the_deploy_guide_gives_a_cloud_values_file_that_the_value_check_reads() -> None:
    [snippet] = values_snippets("deploy.md")
    assert snippet["postgresql"] == {"enabled": False}
    assert snippet["externalDatabase"]["existingSecret"]
    assert snippet["storage"]["url"].startswith("s3://")
    assert not is_chart_value(("externalDatabase", "sslmode"))


@pytest.mark.parametrize("guide", GUIDES)
def test_every_custom_resource_kubectl_is_given_is_a_name_the_crds_declare(guide: str) -> None:
    names = {
        resources.IMAGEJOB_PLURAL,
        resources.IMAGEJOB_SINGULAR,
        *resources.IMAGEJOB_SHORT_NAMES,
        resources.WORKERPOOL_PLURAL,
        resources.WORKERPOOL_SINGULAR,
        *resources.WORKERPOOL_SHORT_NAMES,
        "pixelfleet",  # the CRDs' category
    }
    verbs = r"get|describe|delete|patch|edit"
    for kind in re.findall(rf"kubectl (?:{verbs}) ([a-z.]+)", code_of(guide_text(guide))):
        if "job" in kind or "pool" in kind or kind in {"ij", "wp", "pixelfleet"}:
            assert kind.removesuffix(f".{resources.GROUP}") in names, kind


@pytest.mark.parametrize("guide", GUIDES)
def test_every_link_between_the_guides_reaches_a_heading(guide: str) -> None:
    text = guide_text(guide)
    for target, anchor in re.findall(r"\]\(([\w.-]*\.md)?#([\w-]+)\)", text):
        linked = guide_text(target) if target else text
        assert anchor in anchors(linked), f"{target or guide}#{anchor}"
    for target in re.findall(r"\]\(([\w.-]+\.md)\)", text):
        assert target in GUIDES, target


def test_the_security_guide_shows_the_console_s_policy_as_it_is_sent() -> None:
    from pixelfleet.console import CONTENT_SECURITY_POLICY

    assert f"Content-Security-Policy: {CONTENT_SECURITY_POLICY}\n" in guide_text("security.md")
