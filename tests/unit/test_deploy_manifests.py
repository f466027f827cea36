"""The deployment files stay true to the code, without a cluster or a Docker engine:
deploy/Dockerfile, deploy/k8s (kustomize) and docker-compose.kafka.yml name only settings that
exist, run only `stocksync` commands that exist, and agree on ports, paths and probes."""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from faust.types.settings import Settings as FaustSettings

from sim.endpoints import EndpointSpec
from stocksync.api.auth import load_keys
from stocksync.bootstrap import load_topology
from stocksync.cli import app
from stocksync.codec.schemas import SCHEMAS_DIR_ENV
from stocksync.config import Settings
from stocksync.connectors.settings import ConnectorSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
SECURITY = K8S / "components" / "kafka-security"
COMPOSE = REPO / "docker-compose.kafka.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
TOPOLOGY = REPO / "deploy" / "config" / "topology.yaml"

WORKLOADS = {"StatefulSet", "Deployment", "Job", "DaemonSet"}
ENV_NAME = re.compile(r"\bSTOCKSYNC_[A-Z0-9_]+")


# --- what the code knows ----------------------------------------------------------------------


def env_names(model: type[Any]) -> dict[str, str]:
    """Environment variable -> field name, from a pydantic-settings model's prefix and fields."""
    prefix = model.model_config["env_prefix"]
    return {f"{prefix}{field}".upper(): field for field in model.model_fields}


WORKER_SETTINGS = env_names(Settings)
CONNECTOR_SETTINGS = env_names(ConnectorSettings)
# STOCKSYNC_SCHEMAS_DIR is read by the codec itself (where the .avsc files are), not a Settings
# field; the image sets it because the schemas live outside the installed package.
KNOWN_SETTINGS = set(WORKER_SETTINGS) | set(CONNECTOR_SETTINGS) | {SCHEMAS_DIR_ENV}
# faust reads its own settings from unprefixed environment variables
FAUST_SETTINGS = {p.env_name for p in FaustSettings.SETTINGS.values() if p.env_name}


def resolve_command(args: list[str]) -> Any:
    """The `stocksync` command that `args` runs; fails if a subcommand or option is unknown.
    (typer's commands are click-like: groups have `.commands`, commands `.params`.)"""
    command: Any = typer.main.get_command(app)
    tokens = list(args)
    path = ["stocksync"]
    while hasattr(command, "commands") and tokens and not tokens[0].startswith("-"):
        name = tokens.pop(0)
        path.append(name)
        sub = command.commands.get(name)
        assert sub is not None, f"`{' '.join(path)}` is not a command of stocksync.cli:app"
        command = sub
    assert not hasattr(command, "commands"), f"`{' '.join(path)}` needs a subcommand"
    options = {opt for param in command.params for opt in param.opts}
    for token in tokens:
        if token.startswith("-"):
            assert token.split("=")[0] in options, f"`{' '.join(path)}` has no option {token}"
    return command


# --- reading the files ------------------------------------------------------------------------


def k8s_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization(folder: Path = K8S) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return spec


def base_resources() -> list[dict[str, Any]]:
    return [doc for name in kustomization()["resources"] for doc in load_all(K8S / name)]


def generated_literals(*folders: Path) -> dict[str, dict[str, str]]:
    """ConfigMap name -> literals, from the configMapGenerators (later folders merge in)."""
    maps: dict[str, dict[str, str]] = {}
    for folder in folders:
        for generator in kustomization(folder).get("configMapGenerator", []):
            pairs = (literal.split("=", 1) for literal in generator.get("literals", []))
            maps.setdefault(generator["name"], {}).update(dict(pairs))
    return maps


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            yield doc, doc["spec"]["template"]


def container_env(
    container: dict[str, Any], literals: dict[str, dict[str, str]]
) -> dict[str, str | None]:
    """Variable -> value as the container sees it (None: from a Secret or the downward API)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        env.update(literals[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value")
    return env


def only(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def worker() -> tuple[dict[str, Any], dict[str, Any], dict[str, str | None]]:
    statefulset = only(base_resources(), "StatefulSet", "stocksync-worker")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    return statefulset, container, container_env(container, generated_literals(K8S))


def port_of(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port (a number or a container port's name) as a number."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"container {container['name']} has no port named {port!r}"
    number: int = named[port]
    return number


def compose() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return spec


def app_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if "app" in s.get("profiles", [])}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, rest in dockerfile_instructions():
        if instruction == "ENV":
            env.update(dict(item.split("=", 1) for item in shlex.split(rest)))
    return env


def settings_kwargs(env: dict[str, str | None], names: dict[str, str]) -> dict[str, Any]:
    """Field -> value for a settings model: the strings pydantic validates as the environment's."""
    return {names[k]: v for k, v in env.items() if k in names and v is not None}


@pytest.fixture
def no_stocksync_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings built by the tests see only what the manifests give them."""
    import os

    for name in list(os.environ):
        if name.startswith("STOCKSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# --- every file parses; kustomize finds what it is pointed at ---------------------------------


@pytest.mark.parametrize("path", [*k8s_files(), COMPOSE], ids=lambda p: str(p.relative_to(REPO)))
def test_every_deploy_yaml_parses(path: Path) -> None:
    assert load_all(path), f"{path} holds no YAML document"


def test_kustomizations_point_at_files_that_exist() -> None:
    for folder in (K8S, SECURITY):
        spec = kustomization(folder)
        named = [*spec.get("resources", []), *spec.get("components", [])]
        named += [p["path"] for p in spec.get("patches", [])]
        named += [f for g in spec.get("configMapGenerator", []) for f in g.get("files", [])]
        for name in named:
            assert (folder / name).exists(), f"{folder}/kustomization.yaml names missing {name}"
    assert kustomization(SECURITY)["kind"] == "Component"


def test_base_has_no_namespace_so_it_deploys_anywhere() -> None:
    assert "namespace" not in kustomization()
    for doc in base_resources():
        assert "namespace" not in doc["metadata"], f"{doc['kind']} {doc['metadata']['name']}"


def test_k8s_topology_is_the_config_topology_and_loads() -> None:
    # kustomize reads files only below deploy/k8s, so the ConfigMap's topology is a copy
    copy = K8S / "topology.yaml"
    assert yaml.safe_load(copy.read_text()) == yaml.safe_load(TOPOLOGY.read_text()), (
        "deploy/k8s/topology.yaml differs from deploy/config/topology.yaml: copy it over"
    )
    assert load_topology(copy).channels


# --- settings and commands are real -----------------------------------------------------------


@pytest.mark.parametrize(
    "path", [*k8s_files(), COMPOSE, DOCKERFILE], ids=lambda p: str(p.relative_to(REPO))
)
def test_every_stocksync_variable_named_is_a_setting(path: Path) -> None:
    named = {name for name in ENV_NAME.findall(path.read_text()) if not name.endswith("_")}
    unknown = sorted(named - KNOWN_SETTINGS)
    assert not unknown, f"{path.name} names variables no settings model reads: {unknown}"


def test_variables_set_in_k8s_containers_are_stocksync_or_faust_settings() -> None:
    docs = [*base_resources(), *(d for p in SECURITY.glob("*-patch.yaml") for d in load_all(p))]
    literals = generated_literals(K8S, SECURITY)
    for name, values in literals.items():
        unknown = sorted(set(values) - KNOWN_SETTINGS)
        assert not unknown, f"ConfigMap {name}: {unknown} are not settings"
    for doc, template in pod_templates(docs):
        for container in template["spec"]["containers"]:
            env = container.get("env", [])
            # variables only there to be interpolated into others, e.g. $(POD_NAME)
            helpers = {m for item in env for m in re.findall(r"\$\((\w+)\)", item.get("value", ""))}
            for item in env:
                name = item["name"]
                assert name in KNOWN_SETTINGS or name in FAUST_SETTINGS or name in helpers, (
                    f"{doc['kind']} {doc['metadata']['name']}: {name} is neither a STOCKSYNC_* "
                    f"setting nor a faust setting"
                )


def test_variables_set_in_compose_are_settings() -> None:
    for name, service in app_services().items():
        unknown = sorted(set(service.get("environment", {})) - KNOWN_SETTINGS)
        assert not unknown, f"compose service {name}: {unknown} are not settings"


def test_k8s_settings_validate(no_stocksync_env: None) -> None:
    literals = generated_literals(K8S)
    for _, template in pod_templates(base_resources()):
        for container in template["spec"]["containers"]:
            env = container_env(container, literals)
            # mypy sees the fields of a pydantic-settings model as its __init__ arguments, and
            # not the _env_file argument (here and below)
            settings = Settings(_env_file=None, **settings_kwargs(env, WORKER_SETTINGS))  # type: ignore[call-arg]
            assert settings.partitions >= 1
            if container["args"][:2] == ["connector", "run"]:
                kwargs = settings_kwargs(env, CONNECTOR_SETTINGS)
                connector = ConnectorSettings(_env_file=None, **kwargs)  # type: ignore[call-arg]
                connector.check_channel(load_topology(K8S / "topology.yaml"))


def test_compose_settings_validate(no_stocksync_env: None) -> None:
    image_env = dockerfile_env()
    for service in app_services().values():
        env = {**image_env, **service.get("environment", {})}
        Settings(_env_file=None, **settings_kwargs(env, WORKER_SETTINGS))  # type: ignore[call-arg]
        if service["command"][:2] == ["connector", "run"]:
            connector = ConnectorSettings(
                _env_file=None,  # type: ignore[call-arg]  # as in test_k8s_settings_validate
                **settings_kwargs(env, CONNECTOR_SETTINGS),
            )
            connector.check_channel(load_topology(TOPOLOGY))  # the image's topology


def test_every_command_run_is_a_stocksync_command() -> None:
    commands: list[list[str]] = []
    for _, template in pod_templates(base_resources()):
        for container in template["spec"]["containers"]:
            assert "command" not in container, "keep the image's ENTRYPOINT (stocksync)"
            commands.append(container["args"])
    commands += [service["command"] for service in app_services().values()]
    cmd = [yaml.safe_load(rest) for i, rest in dockerfile_instructions() if i == "CMD"]
    commands += cmd
    assert len(commands) >= 8
    for args in commands:
        resolve_command(args)


def test_resolve_command_refuses_what_does_not_exist() -> None:
    resolve_command(["connector", "run", "--channel", "web"])
    with pytest.raises(AssertionError):
        resolve_command(["topics", "delete"])
    with pytest.raises(AssertionError):
        resolve_command(["simulate", "--speed", "3"])


# --- the worker StatefulSet -------------------------------------------------------------------


def test_worker_state_lives_on_its_persistent_volume() -> None:
    statefulset, container, env = worker()
    claims = {t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    data_dir = env["STOCKSYNC_DATA_DIR"]
    assert data_dir in mounts, f"nothing is mounted at STOCKSYNC_DATA_DIR={data_dir}"
    assert mounts[data_dir] in claims, "STOCKSYNC_DATA_DIR must be a volumeClaimTemplate's volume"


def test_worker_probes_port_and_scrape_annotations_agree() -> None:
    statefulset, container, env = worker()
    http_port = int(env["STOCKSYNC_HTTP_PORT"] or 0)
    assert env["STOCKSYNC_HTTP_HOST"] == "0.0.0.0"
    assert [p["containerPort"] for p in container["ports"]] == [http_port]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert (
        container["livenessProbe"]["httpGet"]["path"] == "/livez"
    )  # the fold watchdog restarts a stalled worker
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert port_of(container, container[probe]["httpGet"]["port"]) == http_port
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == http_port


def test_worker_statefulset_shape() -> None:
    statefulset, container, env = worker()
    spec = statefulset["spec"]
    pod = spec["template"]["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    assert pod["terminationGracePeriodSeconds"] >= 60, "a clean faust shutdown takes time"
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    # static membership: the pod's own stable name is its consumer group instance id
    instance = next(e for e in container["env"] if e["name"] == "CONSUMER_GROUP_INSTANCE_ID")
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    topology_mounts = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "topology"]
    assert env["STOCKSYNC_TOPOLOGY_FILE"] == f"{topology_mounts[0]}/topology.yaml"


def test_services_select_the_pods_and_their_ports() -> None:
    docs = base_resources()
    templates = [t for _, t in pod_templates(docs)]
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        pods = [t for t in templates if selector.items() <= t["metadata"]["labels"].items()]
        assert pods, f"Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            for pod in pods:
                port_of(pod["spec"]["containers"][0], port["targetPort"])
    statefulset, _, _ = worker()
    governing = only(docs, "Service", statefulset["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None", "the StatefulSet's Service must be headless"


def test_pod_disruption_budget_covers_the_workers() -> None:
    docs = base_resources()
    statefulset, _, _ = worker()
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert len(budgets) == 1
    selector = budgets[0]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()


def test_no_service_links_in_the_environment_settings_are_read_from() -> None:
    docs = base_resources()
    for doc, template in pod_templates(docs):
        assert template["spec"].get("enableServiceLinks") is False, doc["metadata"]["name"]
    # and even with links on, no Service name would shadow a setting (<NAME>_PORT, ...)
    for service in (d for d in docs if d["kind"] == "Service"):
        base = service["metadata"]["name"].upper().replace("-", "_")
        links = {f"{base}_PORT", f"{base}_SERVICE_HOST", f"{base}_SERVICE_PORT"}
        assert not links & (KNOWN_SETTINGS | FAUST_SETTINGS), service["metadata"]["name"]


def test_topics_job_provisions_topics() -> None:
    job = only(base_resources(), "Job", "stocksync-topics")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["topics", "create"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")


def test_connector_example_runs_alone_on_its_port() -> None:
    deployments = [d for d in base_resources() if d["kind"] == "Deployment"]
    assert deployments
    literals = generated_literals(K8S)
    for deployment in deployments:
        # the request budget is per process: never two connectors of one channel at once
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = container_env(container, literals)
        port = int(env["STOCKSYNC_CONNECTOR_HTTP_PORT"] or 0)
        assert [p["containerPort"] for p in container["ports"]] == [port]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


# --- the security component and its example Secret ---------------------------------------------


def test_example_secret_has_every_key_the_component_reads(tmp_path: Path) -> None:
    secret = load_all(SECURITY / "secret.example.yaml")[0]
    keys = set(secret["stringData"])
    for patch in SECURITY.glob("*-patch.yaml"):
        text = patch.read_text()
        wanted = set(re.findall(r"key: ([\w.-]+)", text))
        assert wanted <= keys, f"{patch.name} reads {sorted(wanted - keys)}: not in the example"
    keys_file = tmp_path / "api-keys.yaml"
    keys_file.write_text(secret["stringData"]["api-keys.yaml"])
    load_keys(keys_file)  # the example is a valid keys file
    assert secret["metadata"]["name"] == "stocksync-secrets"
    assert all("example" in v.lower() or "REPLACE" in v for v in secret["stringData"].values())


# --- docker-compose.kafka.yml -----------------------------------------------------------------


def test_compose_up_alone_runs_only_kafka() -> None:
    services = compose()["services"]
    assert "profiles" not in services["kafka"]
    assert set(app_services()) == set(services) - {"kafka"}
    assert {"topics", "worker", "endpoints", "connector", "simulate"} <= set(app_services())


def test_compose_services_reach_the_broker_on_its_advertised_listener() -> None:
    kafka_env = compose()["services"]["kafka"]["environment"]
    advertised = {
        url.split("://", 1)[1] for url in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    for name, service in app_services().items():
        bootstrap = service["environment"]["STOCKSYNC_BOOTSTRAP_SERVERS"]
        assert bootstrap in advertised, f"{name}: {bootstrap} is not advertised by the broker"
        assert not bootstrap.startswith("127.0.0.1"), f"{name}: 127.0.0.1 is its own container"


def test_compose_worker_state_port_and_order() -> None:
    service = app_services()["worker"]
    env = {**dockerfile_env(), **service["environment"]}
    assert service["command"] == ["worker"]
    targets = [v.split(":")[1] for v in service["volumes"]]
    assert env["STOCKSYNC_DATA_DIR"] in targets
    published = [p.rsplit(":", 1)[1] for p in service["ports"]]
    assert env["STOCKSYNC_HTTP_PORT"] in published
    assert env["STOCKSYNC_HTTP_HOST"] == "0.0.0.0"
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert app_services()["topics"]["command"] == ["topics", "create"]


def test_compose_connector_and_endpoints_find_each_other() -> None:
    services = app_services()
    endpoints_config = compose()["configs"]["endpoints"]["content"]
    specs = {spec.channel: spec for spec in map(EndpointSpec.of, yaml.safe_load(endpoints_config))}
    connector_env = services["connector"]["environment"]
    spec = specs[connector_env["STOCKSYNC_CONNECTOR_CHANNEL"]]
    assert spec.host == "0.0.0.0", "the endpoint must listen beyond its own container"
    assert connector_env["STOCKSYNC_CONNECTOR_ENDPOINT_URL"] == f"http://endpoints:{spec.port}"
    assert connector_env["STOCKSYNC_CONNECTOR_HTTP_HOST"] == "0.0.0.0"
    connector_port = connector_env["STOCKSYNC_CONNECTOR_HTTP_PORT"]
    assert spec.report_url == f"http://connector:{connector_port}/v1/reports"
    mounted = services["endpoints"]["configs"][0]["target"]
    assert services["endpoints"]["command"][-2:] == ["--config", mounted]


# --- deploy/Dockerfile ------------------------------------------------------------------------


def test_dockerfile_image_contract() -> None:
    instructions = dockerfile_instructions()
    by_kind: dict[str, list[str]] = {}
    for kind, rest in instructions:
        by_kind.setdefault(kind, []).append(rest)
    env = dockerfile_env()
    assert by_kind["FROM"] == ["python:3.11-slim"]
    assert yaml.safe_load(by_kind["ENTRYPOINT"][-1]) == ["stocksync"]
    assert yaml.safe_load(by_kind["CMD"][-1]) == ["worker"]
    assert by_kind["EXPOSE"] == [env["STOCKSYNC_HTTP_PORT"]]
    assert env["STOCKSYNC_HTTP_HOST"] == "0.0.0.0"
    user = by_kind["USER"][-1].split(":")[0]
    assert user not in ("root", "0")
    assert "/healthz" in by_kind["HEALTHCHECK"][-1]
    assert any("pip install ." in run for run in by_kind["RUN"])
    # the schemas the image points the codec at are copied into it
    copies = [shlex.split(c) for c in by_kind["COPY"]]
    assert any(c[-1] == env[SCHEMAS_DIR_ENV] for c in copies)
    # `endpoints run` (compose's endpoints role) imports sim.endpoints, which `pip install .`
    # leaves out: the image copies sim/ to a folder on PYTHONPATH
    assert any(c[0] == "sim" and c[-1] == f"{env['PYTHONPATH']}/sim" for c in copies)


def test_dockerfile_copies_what_the_build_context_keeps() -> None:
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kind, rest in dockerfile_instructions():
        if kind != "COPY":
            continue
        for source in shlex.split(rest)[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            hit = [p for p in ignored if fnmatch.fnmatch(source, p.rstrip("/"))]
            assert not hit, f"COPY {source} is excluded by .dockerignore {hit}"
    for needed in ("pyproject.toml", "README.md", "src", "streams", "schemas", "sim"):
        assert not any(fnmatch.fnmatch(needed, p) for p in ignored), needed


# --- rendering with kustomize, when a renderer is installed -----------------------------------

# "... is not installed (how to install it)": deploy/test.sh lists such skips in its summary
NO_RENDERER = (
    "kustomize or kubectl is not installed (https://kubernetes.io/docs/tasks/tools/): "
    "rendering not checked"
)


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render(folder: Path) -> list[dict[str, Any]]:
    command = kustomize_command()
    if command is None:
        pytest.skip(NO_RENDERER)
    done = subprocess.run(
        [*command, str(folder)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d is not None]


def test_kustomize_renders_the_base() -> None:
    docs = render(K8S)
    kinds = sorted(d["kind"] for d in docs)
    expected = ["ConfigMap"] * 2 + ["Service"] * 3
    expected += ["Deployment", "Job", "PodDisruptionBudget", "StatefulSet"]
    assert kinds == sorted(expected)
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    for doc, template in pod_templates(docs):
        assert template["metadata"]["labels"]["app.kubernetes.io/part-of"] == "stocksync"
        spec = template["spec"]
        used = [v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v]
        for container in spec["containers"]:
            assert container["image"] == "stocksync:0.1.0"
            used += [s["configMapRef"]["name"] for s in container.get("envFrom", [])]
        # generated names carry a content hash; every reference must have been rewritten
        assert set(used) <= config_maps, f"{doc['metadata']['name']} uses {used}"


def test_kustomize_renders_an_overlay_with_the_security_component(tmp_path: Path) -> None:
    if kustomize_command() is None:
        pytest.skip(NO_RENDERER)
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "resources: [../k8s]\ncomponents: [../k8s/components/kafka-security]\n"
    )
    docs = render(overlay)
    settings = next(d for d in docs if d["metadata"]["name"].startswith("stocksync-settings"))
    assert settings["data"]["STOCKSYNC_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert settings["data"]["STOCKSYNC_PARTITIONS"]  # merged, not replaced
    for doc, template in pod_templates(docs):
        container = template["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        password = env["STOCKSYNC_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password["name"] == "stocksync-secrets", doc["metadata"]["name"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        ca_file = settings["data"]["STOCKSYNC_SSL_CA_FILE"]
        assert str(Path(ca_file).parent) in mounts, doc["metadata"]["name"]
        if "STOCKSYNC_API_KEYS_FILE" in env:
            assert str(Path(env["STOCKSYNC_API_KEYS_FILE"]["value"]).parent) in mounts
