"""Starting the servers under test on loopback, pinned to their own core, and reading their
memory. The benchmark process itself is the load generator, pinned to the other core."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
SERVER_CORE = 0
LOADGEN_CORE = 1
# uvicorn's WebSocket implementations, in the order the benchmarks try them.
WS_IMPLEMENTATIONS = ("websockets-sansio", "websockets", "wsproto")


def can_pin() -> bool:
    return (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None


def pin_load_generator() -> str:
    """Keep the load generator off the server's core; says what was done."""
    if not can_pin():
        return "not pinned (fewer than 2 cores or no taskset)"
    os.sched_setaffinity(0, {LOADGEN_CORE})
    return f"server on core {SERVER_CORE}, load generator on core {LOADGEN_CORE}"


def raise_open_files_limit() -> int:
    """Thousands of sockets need thousands of descriptors; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ws_available(implementation: str) -> bool:
    module = {"websockets-sansio": "websockets", "websockets": "websockets", "wsproto": "wsproto"}
    try:
        __import__(module[implementation])
    except ImportError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def rss_kib(self) -> int:
        """Resident memory now, from /proc/PID/status (VmRSS, in KiB)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used so far, from /proc/PID/stat."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        # utime and stime are the 14th and 15th fields; the split starts at the 3rd.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _spawn(name: str, argv: list[str], *, env: dict[str, str], cwd: Path, port: int) -> Server:
    log_path = cwd / f"{name}.log"
    pin = ["taskset", "-c", str(SERVER_CORE)] if can_pin() else []
    with log_path.open("wb") as log:
        # taskset execs the command, so the child's pid is the server's own.
        process = subprocess.Popen(
            [*pin, *argv], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(name, process, port, log_path)
    _wait_ready(server)
    return server


def _wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} did not answer /healthz in {timeout:.0f} s")


def start_feedback(
    directory: Path,
    database_url: str,
    *,
    ws: str = "websockets-sansio",
    broker_url: str = "memory://",
) -> Server:
    """The app as `feedback serve` runs it (same uvicorn WebSocket options), from env settings.

    Differences, on purpose: no access log (the baseline logs nothing either) and a short
    graceful-shutdown timeout so the benchmark ends quickly.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env.update(
        FEEDBACK_DATABASE_URL=database_url,
        FEEDBACK_BASE_URL=f"http://{HOST}:{port}",
        FEEDBACK_SECRET_KEY="bench-secret-key-not-for-production",
        FEEDBACK_BROKER_URL=broker_url,
    )
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "feedback.app:create_app",
        "--factory",
        *uvicorn_options(port, ws),
    ]
    # cwd is the benchmark's temporary directory, so no stray .env is read.
    return _spawn(f"feedback-{ws}", argv, env=env, cwd=directory, port=port)


def uvicorn_options(port: int, ws: str = "websockets-sansio") -> list[str]:
    """`feedback serve`'s uvicorn options, bar access log and shutdown timeout."""
    return [
        "--host",
        HOST,
        "--port",
        str(port),
        "--ws",
        ws,
        "--ws-max-size",
        str(64 * 1024),
        "--ws-per-message-deflate",
        "false",
        "--ws-ping-interval",
        "20",
        "--ws-ping-timeout",
        "20",
        "--proxy-headers",
        "--timeout-graceful-shutdown",
        "3",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def start_http_ceiling(directory: Path) -> Server:
    """A database-free Starlette app with B5's route, under feedback's uvicorn options."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH_DIR), "_http_ceiling:app"]
    argv += uvicorn_options(port)
    return _spawn("http-ceiling", argv, env=dict(os.environ), cwd=directory, port=port)


def start_baseline(directory: Path) -> Server:
    """The bare websockets broadcast server (bench/_baseline_server.py)."""
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "_baseline_server.py"), HOST, str(port)]
    return _spawn("baseline", argv, env=dict(os.environ), cwd=directory, port=port)
