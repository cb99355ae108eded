"""docker-compose.yml and ops/systemd/: valid, and hardened. Neither Docker nor systemd runs here.

The compose file is validated the way CI does it (`.ci/validate-compose`: the Compose
specification's JSON schema), then checked for what the schema cannot know: a healthcheck on
every long-running service, workers given longer to stop than a task may run (the limit read
from the Celery app the code builds), pinned images, no required variable, passwords only in
secret files, and one number for the worker replicas and the connection budget. The systemd
units are parsed with configparser and, where `systemd-analyze` exists, verified by it.
"""

from __future__ import annotations

import configparser
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from scimflow.ops import flower
from scimflow.ops.cli import _parser, main
from scimflow.ops.connection_budget import Budget
from scimflow.ops.processes import gunicorn_argv
from scimflow.pipeline.settings import Settings
from scimflow.workers.celery_app import make_celery

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
VALIDATE_COMPOSE = ROOT / ".ci" / "validate-compose"
SYSTEMD = ROOT / "ops" / "systemd"
SCIMFLOW_SERVICES = ("migrate", "api", "worker", "events", "beat", "flower", "console")
UNITS = ("scimflow-migrate.service", "scimflow-api.service", "scimflow-worker@.service",
         "scimflow-beat.service", "scimflow-events-worker.service", "scimflow-console.service")
LONG_RUNNING_UNITS = UNITS[1:]
VENV_SCIMFLOW = "/opt/scimflow/venv/bin/scimflow"
# Compose interpolation: `$$` (an escaped dollar), `${NAME...}` or `$NAME`.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<braced>[^}]*)\}|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)")
_REQUIRED = re.compile(r"(?<!\$)\$\{[A-Za-z_][A-Za-z0-9_]*:?\?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}


# --- helpers ----------------------------------------------------------------------------------


def raw_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))
    return document


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation (`${NAME}`, `${NAME:-default}`, `${NAME-default}`)."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("plain"):
            return env.get(match.group("plain"), "")
        expression = match.group("braced")
        name, operator, default = re.fullmatch(
            r"([A-Za-z_][A-Za-z0-9_]*)(:-|-|:\?|\?)?(.*)", expression, re.DOTALL
        ).groups()  # type: ignore[union-attr]
        assert operator not in (":?", "?"), f"${{{expression}}} is a required variable"
        if operator == ":-":
            return env.get(name) or default
        if operator == "-":
            return env.get(name, default)
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Compose sees it with `env` (nothing set by default)."""
    resolved: dict[str, Any] = interpolate(raw_compose(), env or {})
    return resolved


def seconds(duration: str) -> float:
    """A Compose duration (`5m30s`, `1m0s`, `30s`) or a systemd time span (`330s`, `5min`)."""
    duration = duration.replace("min", "m")
    parts = _DURATION.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def settings_of(service: Mapping[str, Any]) -> Settings:
    """The settings a service's processes build from its environment (secret files aside)."""
    env = {key: str(value) for key, value in service.get("environment", {}).items()
           if not key.endswith("_FILE")}
    return Settings.from_env(env)


def task_time_limit(settings: Settings) -> int:
    """The hard time limit of the Celery app the worker runs, as the code configures it."""
    limit = make_celery(settings).conf.task_time_limit
    assert isinstance(limit, int) and limit > 0
    return limit


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    resolved: dict[str, Any] = compose()["services"]
    return resolved


# --- validation against the Compose specification ---------------------------------------------


def test_validate_compose_accepts_the_compose_file() -> None:
    """What CI runs (.ci/run), with this interpreter's environment."""
    result = subprocess.run(
        [str(VALIDATE_COMPOSE)], capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "VENV_BIN": str(Path(sys.executable).parent)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validate-compose: ok" in result.stdout


def test_validate_compose_rejects_what_the_specification_does_not_allow(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n"
        "  api:\n"
        "    image: scimflow:0.1.0\n"
        "    stop_grace_period: 30s\n"
        "    healthchek: {test: [CMD, 'true']}\n"  # a typo the schema catches
        "    command: [run, '${SECRET:?set it}']\n"
    )
    result = subprocess.run(
        [str(VALIDATE_COMPOSE), str(broken)], capture_output=True, text=True, timeout=300,
        check=False, env={**os.environ, "VENV_BIN": str(Path(sys.executable).parent)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "healthchek" in output
    assert "required variable" in output


def test_validate_compose_rejects_a_missing_bind_mounted_file(tmp_path: Path) -> None:
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text(
        "services:\n"
        "  prometheus:\n"
        "    image: prom/prometheus:v3.1.0\n"
        "    volumes:\n"
        "      - ./ops/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro\n"
    )
    result = subprocess.run(
        [str(VALIDATE_COMPOSE), str(compose_file)], capture_output=True, text=True,
        timeout=300, check=False,
        env={**os.environ, "VENV_BIN": str(Path(sys.executable).parent)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "./ops/prometheus/prometheus.yml does not exist" in result.stderr


def test_the_compose_file_matches_the_compose_spec_schema() -> None:
    """The same schema, in process: every error listed with where it is."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text("utf-8"))
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{error.json_path}: {error.message}"
              for error in validator.iter_errors(raw_compose())]
    assert not errors, "\n".join(errors)


def test_no_variable_is_required() -> None:
    """`docker compose down`, `ps` and `config` must work with no variable set."""
    text = COMPOSE_FILE.read_text("utf-8")
    assert not _REQUIRED.findall(text)
    assert compose({})["services"]  # interpolates with an empty environment


# --- healthchecks and shutdown -----------------------------------------------------------------


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if service.get("restart") == "no":  # a one-shot (migrate) exits; nothing to check
            assert name == "migrate"
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        test = check["test"]
        assert isinstance(test, list), name
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name


def test_the_api_is_healthy_when_ready(services: dict[str, Any]) -> None:
    test = " ".join(services["api"]["healthcheck"]["test"])
    port = option(services["api"]["command"], "--bind").rsplit(":", 1)[1]
    assert f"http://127.0.0.1:{port}/readyz" in test
    assert "timeout=" in test  # urllib would wait forever otherwise


def test_a_worker_pings_only_itself(services: dict[str, Any]) -> None:
    """Its node name is the `scimflow worker` default `worker@%h` (%h: the container hostname)."""
    command = services["worker"]["command"]
    assert "--hostname" not in command
    assert _parser().parse_args(["worker"]).hostname == "worker@%h"
    test = services["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert "celery -A scimflow.workers.main inspect ping" in test[1]
    assert "--destination worker@$HOSTNAME" in test[1]  # `$$` in the file: for the shell


def test_beat_is_healthy_while_its_schedule_file_is_fresh(services: dict[str, Any]) -> None:
    schedule = option(services["beat"]["command"], "--schedule")
    test = services["beat"]["healthcheck"]["test"]
    assert f"glob.glob('{schedule}*')" in test[-1]


def test_flower_is_checked_on_its_own_port(services: dict[str, Any]) -> None:
    command = services["flower"]["command"]
    assert command[:2] == ["scimflow", "flower"]
    port = option(command, "--port")
    assert f"http://127.0.0.1:{port}/healthcheck" in " ".join(
        services["flower"]["healthcheck"]["test"]
    )


def test_the_console_is_checked_on_its_login_page(services: dict[str, Any]) -> None:
    command = services["console"]["command"]
    assert command[:2] == ["scimflow", "console"]
    port = option(command, "--bind").rsplit(":", 1)[1]
    assert services["console"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    test = " ".join(services["console"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/console/login" in test
    assert "timeout=" in test


def test_the_console_cookie_is_secure_unless_turned_off() -> None:
    assert settings_of(compose()["services"]["console"]).console_secure_cookie
    loopback = compose({"SCIMFLOW_CONSOLE_SECURE_COOKIE": "false"})["services"]["console"]
    assert not settings_of(loopback).console_secure_cookie


def test_workers_outlast_the_task_time_limit(services: dict[str, Any]) -> None:
    worker = services["worker"]
    limit = task_time_limit(settings_of(worker))
    assert seconds(worker["stop_grace_period"]) >= limit + 30
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"  # Celery's warm shutdown


def test_the_other_processes_have_time_to_stop(services: dict[str, Any]) -> None:
    graceful = int(option(gunicorn_argv("app", "127.0.0.1:0", 1, 1, 1), "--graceful-timeout"))
    assert seconds(services["api"]["stop_grace_period"]) > graceful
    for name in ("beat", "flower", "postgres", "redis"):
        assert seconds(services[name]["stop_grace_period"]) >= 10, name


# --- images ------------------------------------------------------------------------------------


def test_images_are_pinned(services: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", name
        if repository == "scimflow":
            assert tag == version, f"{name}: tag the image with the project version {version}"
        else:
            assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?", tag), f"{name}: {image}"


def test_the_base_image_is_pinned() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.MULTILINE))
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert bases
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], base)
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+-[a-z0-9-]+", image), image


# --- secrets -----------------------------------------------------------------------------------


def test_passwords_come_from_secret_files(services: dict[str, Any]) -> None:
    secrets = compose()["secrets"]
    for name, secret in secrets.items():
        assert secret["file"] == f"./secrets/{name}", name
    assert "/secrets/" in (ROOT / ".gitignore").read_text("utf-8").splitlines()
    forbidden = {"SCIMFLOW_DATABASE_URL", "POSTGRES_PASSWORD", "FLOWER_BASIC_AUTH",
                 "DATABASE_URL", "DB_PASSWORD"}
    for name, service in services.items():
        env = service.get("environment", {})
        assert not forbidden & set(env), f"{name}: a password in the environment"
        for key, value in env.items():
            if key.endswith("_FILE"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in service.get("secrets", []), f"{name}: {key} is no secret"
        for secret in service.get("secrets", []):
            assert secret in secrets, f"{name}: undeclared secret {secret}"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"]
    for name in ("migrate", "api", "worker", "beat"):
        assert services[name]["environment"]["SCIMFLOW_DATABASE_URL_FILE"], name


def test_the_database_url_is_read_from_its_file(tmp_path: Path) -> None:
    url = "postgresql+psycopg://scimflow:s3cret@postgres:5432/scimflow"
    (tmp_path / "database_url").write_text(url + "\n")
    settings = Settings.from_env({"SCIMFLOW_DATABASE_URL_FILE": str(tmp_path / "database_url")})
    assert settings.database_url == url


def test_flower_holds_no_database_secret(services: dict[str, Any]) -> None:
    flower = services["flower"]
    assert flower["secrets"] == ["flower_basic_auth"]
    assert "SCIMFLOW_DATABASE_URL_FILE" not in flower["environment"]
    assert not any("basic" in arg for arg in flower["command"])  # never on a command line
    assert flower["environment"]["SCIMFLOW_FLOWER_BASIC_AUTH_FILE"] == (
        "/run/secrets/flower_basic_auth")


class _Exec(Exception):
    """Where `scimflow flower` would have replaced itself with Flower."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        super().__init__(argv)
        self.argv, self.env = argv, env


@pytest.mark.parametrize(
    ("credential", "starts"),
    [(None, False), ("", False), ("admin", False), ("admin:", False), (":pw", False),
     ("admin:pw\n", True), ("a:b,c:d", True), ("a:s3cr3t,c", False)],
)
def test_flower_refuses_to_start_without_its_credential(
    services: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], *, credential: str | None, starts: bool
) -> None:
    """The flower service's own command and environment, its secret file in tmp_path; the
    process image it would become is caught at os.execve."""
    secret = tmp_path / "flower_basic_auth"
    if credential is not None:
        secret.write_text(credential)
    for name in [n for n in os.environ if n.startswith("SCIMFLOW_")]:
        monkeypatch.delenv(name)
    for name, value in services["flower"]["environment"].items():
        monkeypatch.setenv(name, str(value).replace("/run/secrets/flower_basic_auth", str(secret)))

    def execve(_path: str, argv: list[str], env: dict[str, str]) -> None:
        raise _Exec(argv, env)

    monkeypatch.setattr(flower.os, "execve", execve)
    command = services["flower"]["command"]
    assert command[0] == "scimflow"
    if starts:
        with pytest.raises(_Exec) as started:
            main(command[1:])
        assert started.value.env["FLOWER_BASIC_AUTH"] == credential.strip()  # type: ignore[union-attr]
        assert started.value.argv[-4:-1] == [
            "flower", "--address=0.0.0.0", f"--port={option(command, '--port')}"]
        assert not any(credential.strip() in arg for arg in started.value.argv)  # type: ignore[union-attr]
    else:
        code = main(command[1:])
        err = capsys.readouterr().err
        assert code == 2
        # No secret file at all is refused by the settings, before Flower's own check.
        assert "refuses to start" in err or "cannot be read" in err
        assert "s3cr3t" not in err  # a malformed credential may still hold a password


# --- scaling and the connection budget ---------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [{}, {"SCIMFLOW_WORKER_REPLICAS": "5", "SCIMFLOW_WORKER_CONCURRENCY": "3"}],
)
def test_the_replica_count_is_the_budget_s(env: dict[str, str]) -> None:
    """deploy.replicas and SCIMFLOW_WORKER_REPLICAS are one variable; so is the concurrency."""
    services = compose(env)["services"]
    worker = services["worker"]
    replicas = int(worker["deploy"]["replicas"])
    assert "--concurrency" not in worker["command"]  # the pool size is the setting
    for name in ("migrate", "api", "worker", "beat"):
        settings = settings_of(services[name])  # `scimflow connections` in any container
        assert settings.worker_replicas == replicas, name
        assert Budget.of(settings).workers == replicas * settings.worker_concurrency, name
    if env:
        assert replicas == 5
        assert settings_of(worker).worker_concurrency == 3
    api_settings = settings_of(services["api"])
    assert int(option(services["api"]["command"], "--workers")) == api_settings.api_processes


def test_workers_can_scale(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


# --- metrics profile ---------------------------------------------------------------------------


def prometheus_targets() -> dict[str, list[str]]:
    """Job name -> the `host:port` targets of ops/prometheus/prometheus.yml."""
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text("utf-8"))
    targets: dict[str, list[str]] = {}
    for job in config["scrape_configs"]:
        found = targets.setdefault(job["job_name"], [])
        for static in job.get("static_configs", []):
            found += static["targets"]
        for dns in job.get("dns_sd_configs", []):
            found += [f"{name}:{dns['port']}" for name in dns["names"]]
    return targets


def test_prometheus_runs_only_under_the_metrics_profile(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["metrics"]
    assert any(volume.startswith("./ops/prometheus/prometheus.yml:")
               for volume in prometheus["volumes"])
    # Published on loopback only, like every other port of the file.
    assert all(port.startswith("127.0.0.1:") for port in prometheus["ports"])
    # Nothing of scimflow's waits on an optional service.
    for name in SCIMFLOW_SERVICES:
        assert "prometheus" not in services[name].get("depends_on", {}), name


def test_prometheus_scrapes_the_api_and_every_worker_on_their_ports(
    services: dict[str, Any],
) -> None:
    port = Settings().worker_metrics_port
    api_bind = option(services["api"]["command"], "--bind")
    targets = prometheus_targets()

    assert targets["scimflow-api"] == [f"api:{api_bind.rpartition(':')[2]}"]
    assert targets["scimflow-worker"] == [f"worker:{port}"]
    assert targets["scimflow-events"] == [f"events:{port + 1}"]
    # The workers' ports are reachable on the compose network, and published nowhere.
    assert services["worker"]["expose"] == [str(port)]
    assert services["events"]["expose"] == [str(port + 1)]


# --- systemd units -----------------------------------------------------------------------------


def parse_unit(path: Path) -> configparser.ConfigParser:
    """A unit file, parsed strictly: no section or key twice (one line per setting here)."""
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",),
                                       comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text("utf-8"), source=str(path))
    return parser


@pytest.fixture(scope="module")
def units() -> dict[str, configparser.ConfigParser]:
    return {name: parse_unit(SYSTEMD / name) for name in UNITS}


def test_the_units_are_all_there() -> None:
    assert {path.name for path in SYSTEMD.glob("*.service")} == set(UNITS)


def test_every_unit_runs_scimflow_as_its_own_user(
    units: dict[str, configparser.ConfigParser]
) -> None:
    for name, unit in units.items():
        assert set(unit.sections()) == {"Unit", "Service", "Install"}, name
        service = unit["Service"]
        command = name.removeprefix("scimflow-").split("@")[0].split(".")[0]
        assert service["ExecStart"].split()[:2] == [VENV_SCIMFLOW, command], name
        assert service["User"] == "scimflow", name
        assert service["EnvironmentFile"] == "/etc/scimflow/scimflow.env", name
        credential, _, source = service["LoadCredential"].partition(":")
        assert source.startswith("/etc/scimflow/credentials/"), name
        assert service["Environment"] == f"SCIMFLOW_DATABASE_URL_FILE=%d/{credential}", name
        for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                           "PrivateTmp": "yes", "ProtectHome": "yes"}.items():
            assert service[key] == value, f"{name}: {key}"
        assert unit["Install"]["WantedBy"] == "multi-user.target", name


def test_migrations_run_once_before_the_processes(
    units: dict[str, configparser.ConfigParser]
) -> None:
    migrate = units["scimflow-migrate.service"]["Service"]
    assert migrate["Type"] == "oneshot"
    assert migrate["RemainAfterExit"] == "yes"
    for name in LONG_RUNNING_UNITS:
        unit = units[name]["Unit"]
        assert "scimflow-migrate.service" in unit["Requires"].split(), name
        assert "scimflow-migrate.service" in unit["After"].split(), name


def test_the_processes_are_restarted_and_stopped_gracefully(
    units: dict[str, configparser.ConfigParser]
) -> None:
    for name in LONG_RUNNING_UNITS:
        service = units[name]["Service"]
        assert service["Restart"] == "always", name
        assert service["KillSignal"] == "SIGTERM", name
        assert service["KillMode"] == "mixed", name  # SIGTERM to the main process alone
        assert units[name]["Unit"]["StartLimitIntervalSec"] == "0", name


def test_a_worker_instance_outlasts_the_task_time_limit(
    units: dict[str, configparser.ConfigParser]
) -> None:
    service = units["scimflow-worker@.service"]["Service"]
    limit = task_time_limit(Settings(broker_url="redis://127.0.0.1:6379/0"))
    assert seconds(service["TimeoutStopSec"]) >= limit + 30
    assert "%i" in option(service["ExecStart"].split(), "--hostname")  # unique per instance


def test_beat_writes_its_schedule_where_it_may(
    units: dict[str, configparser.ConfigParser]
) -> None:
    service = units["scimflow-beat.service"]["Service"]
    schedule = Path(option(service["ExecStart"].split(), "--schedule"))
    state = Path("/var/lib") / service["StateDirectory"]
    assert schedule.parent == state
    assert str(state) in service["ReadWritePaths"].split()


def test_the_example_environment_file_is_valid_configuration() -> None:
    env = {}
    for line in (SYSTEMD / "scimflow.env.example").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    assert "SCIMFLOW_DATABASE_URL" not in env  # a credential, not an environment variable
    settings = Settings.from_env(env)
    assert settings.broker_url.startswith("redis://")
    assert settings.worker_replicas >= 1


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed: the units were only parsed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    """Verified as installed, but with a stand-in for the venv's `scimflow` (verify checks it)."""
    stand_in = tmp_path / "scimflow"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    for name in UNITS:
        text = (SYSTEMD / name).read_text("utf-8").replace(VENV_SCIMFLOW, str(stand_in))
        (tmp_path / name).write_text(text)
    instances = [name.replace("@.", "@1.") for name in UNITS]
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in instances)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if "scimflow" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr
