"""docs/kubernetes.md's example manifests agree with the image and the app they run. Checked offline:
parsed and compared, not applied to a cluster."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.routing import APIRoute

from callmemory.api.health import router as health

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "kubernetes.md"
# operations.md: what the shutdown needs after SIGTERM (requests in flight, then the last flush).
SHUTDOWN_S = 25


def manifests() -> dict[str, dict[str, Any]]:
    """The page's YAML examples, by kind."""
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), flags=re.S)
    parsed = [yaml.safe_load(block) for block in blocks]
    return {manifest["kind"]: manifest for manifest in parsed}


def pod(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifests()[kind]["spec"]["template"]["spec"]
    return spec


def image_user() -> tuple[int, int]:
    match = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    assert match, "the Dockerfile's USER is no longer numeric"
    return int(match[1]), int(match[2])


def test_the_page_shows_a_migration_job_and_the_app_deployment() -> None:
    assert set(manifests()) == {"Job", "Deployment"}


@pytest.mark.parametrize("kind", ["Job", "Deployment"])
def test_the_pods_run_as_the_images_numeric_user_and_never_as_root(kind: str) -> None:
    context = pod(kind)["securityContext"]

    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"]) == image_user()


@pytest.mark.parametrize("kind", ["Job", "Deployment"])
def test_the_containers_keep_tini_as_pid_1(kind: str) -> None:
    # `command` would replace the image's entrypoint (tini); `args` replaces its CMD only.
    containers = pod(kind)["containers"]

    assert [("command" in c, c["args"][0]) for c in containers] == [(False, "callmemory")]


def test_the_migration_job_waits_for_a_database_that_is_still_starting() -> None:
    (migrate,) = pod("Job")["containers"]

    assert migrate["args"][:2] == ["callmemory", "migrate"]
    assert "--wait" in migrate["args"]


def test_the_deployment_leaves_the_shutdown_its_time_after_the_pre_stop() -> None:
    spec = pod("Deployment")
    (app,) = spec["containers"]
    pre_stop = app["lifecycle"]["preStop"]["exec"]["command"]

    assert pre_stop[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] - int(pre_stop[1]) >= SHUTDOWN_S


def test_the_probes_ask_the_apps_health_routes() -> None:
    (app,) = pod("Deployment")["containers"]
    served = {route.path for route in health.routes if isinstance(route, APIRoute)}

    probes = {name: app[name]["httpGet"]["path"] for name in app if name.endswith("Probe")}

    assert probes == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    assert set(probes.values()) <= served


def test_the_only_writable_path_is_a_volume_at_tmp_where_the_image_keeps_its_data() -> None:
    spec = pod("Deployment")
    (app,) = spec["containers"]
    (mount,) = app["volumeMounts"]
    data_dir = re.search(r"CALLMEMORY_DATA_DIR=(\S+)", (ROOT / "Dockerfile").read_text())

    assert app["securityContext"]["readOnlyRootFilesystem"] is True
    assert mount["mountPath"] == "/tmp"
    assert data_dir is not None
    assert data_dir[1].startswith("/tmp/")
    assert {"name": mount["name"], "emptyDir": {}} in spec["volumes"]
