"""Fixtures that run the real `tern broker` process on a free loopback port."""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

TERN_BIN = os.environ.get("TERN_BIN", os.path.join(os.path.dirname(__file__), "../../.build/debug/tern"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    """A tern broker child process with its own data directory."""

    def __init__(self, data_dir, extra_args=(), env=None):
        self.data_dir = data_dir
        self.env = env
        self.port = free_port()
        self.metrics_port = free_port()
        self.extra_args = list(extra_args)
        self.proc = None
        # Runs in the child before exec (e.g. to lower its open-file limit).
        self.preexec = None
        self.log_path = os.path.join(os.path.dirname(data_dir), f"broker-{self.port}.log")

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [TERN_BIN, "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{self.port}", "--log-dirs", self.data_dir,
             "--num-partitions", "3", "--set", "group.initial.rebalance.delay.ms=300",
             "--metrics-listener", f"127.0.0.1:{self.metrics_port}", *self.extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env, preexec_fn=self.preexec)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}: {self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not start listening")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def restart(self):
        self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def running_broker(env_for_root=None):
    """A broker on a data directory of its own under a fresh temporary root, stopped and removed
    at the end. `env_for_root(root)`: its environment (default: this process's)."""
    root = tempfile.mkdtemp(prefix="tern-interop-")
    b = BrokerProcess(os.path.join(root, "data"), env=env_for_root(root) if env_for_root else None)
    b.root = root
    b.start()
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def broker():
    with running_broker() as b:
        yield b


def kcat(*args, input_bytes=None, timeout=60):
    """Runs kcat (librdkafka 2.0.2 from Debian) and returns stdout bytes; fails the test on error."""
    res = subprocess.run(["kcat", *args], input=input_bytes, capture_output=True, timeout=timeout)
    if res.returncode != 0:
        raise AssertionError(f"kcat {args} failed ({res.returncode}): {res.stderr.decode(errors='replace')}")
    return res.stdout
