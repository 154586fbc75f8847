"""A real etcd and several `tern broker --cluster` processes on loopback ports, for the cluster tests."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from conftest import BrokerProcess, free_port

ETCD_BIN = next((p for p in ("/usr/bin/etcd", "/usr/local/bin/etcd") if os.path.exists(p)), None)

# Short enough that failover tests run in seconds; the broker default is Kafka's 9 s.
SESSION_TIMEOUT_MS = 3000


class EtcdProcess:
    def __init__(self, root):
        if ETCD_BIN is None:
            raise RuntimeError("etcd is not installed (apt-get install etcd-server, or `make deps`)")
        self.port, peer = free_port(), free_port()
        self.data_dir = os.path.join(root, "etcd")
        self.log = open(os.path.join(root, "etcd.log"), "ab")
        url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [ETCD_BIN, "--name", "t", "--data-dir", self.data_dir, "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"t=http://127.0.0.1:{peer}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("etcd did not start")

    @property
    def endpoint(self):
        return f"etcd://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()


class Cluster:
    """etcd + `n` brokers with node ids 1…n, each with its own data directory."""

    def __init__(self, n=3, extra_args=(), env=None, prepare=None):
        """`prepare(node_id, data_dir)` runs before each broker first starts (e.g. to mount a
        small disk there)."""
        self.root = tempfile.mkdtemp(prefix="tern-cluster-")
        self.etcd = EtcdProcess(self.root)
        self.extra_args = list(extra_args)
        # A function of the node id: each broker's environment (None: this process's).
        self.env = env or (lambda node_id: None)
        self.brokers = {i: self.make_broker(i) for i in range(1, n + 1)}
        for i, b in self.brokers.items():
            if prepare:
                prepare(i, b.data_dir)
            b.start()
        # Listening means registered; every broker (the controller above all) must also have seen
        # the others' registrations through its watch before a test places replicas.
        self.wait_until_all_see(set(self.brokers))

    def wait_until_all_see(self, ids):
        from confluent_kafka.admin import AdminClient

        def everyone_sees():
            for b in self.brokers.values():
                md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=5)
                if set(md.brokers) != ids:
                    return False
            return True

        wait_for(f"every broker sees brokers {sorted(ids)}", everyone_sees)

    def make_broker(self, node_id, extra_args=()):
        return BrokerProcess(
            os.path.join(self.root, f"data-{node_id}"),
            extra_args=["--node-id", str(node_id), "--cluster", self.etcd.endpoint,
                        "--set", f"broker.session.timeout.ms={SESSION_TIMEOUT_MS}", *self.extra_args, *extra_args],
            env=self.env(node_id))

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers.values() if b.alive())

    def broker_by_port(self, port):
        return next(i for i, b in self.brokers.items() if b.port == port)

    def stop(self):
        for b in self.brokers.values():
            b.stop(signal.SIGKILL)
        self.etcd.stop()
        if not os.environ.get("TERN_KEEP_CLUSTER"):
            shutil.rmtree(self.root, ignore_errors=True)


def wait_for(what, condition, timeout=20, interval=0.1):
    """Polls `condition` until it returns something truthy; returns (value, seconds taken)."""
    start = time.time()
    while time.time() - start < timeout:
        value = condition()
        if value:
            return value, time.time() - start
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}")


class BackgroundProducer:
    """A confluent-kafka producer writing numbered values to `topic` on a thread of its own until
    the `with` block ends, then flushing; `acked` and `errors` collect the delivery reports."""

    def __init__(self, bootstrap, topic, flush_seconds=60, **conf):
        from confluent_kafka import Producer

        self.topic, self.flush_seconds = topic, flush_seconds
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **conf})
        self.acked, self.errors = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _report(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.acked.append(msg.value())

    def _run(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.producer.produce(self.topic, value=f"v{i}".encode(), on_delivery=self._report)
                i += 1
            except BufferError:
                pass
            self.producer.poll(0.002)
        self.producer.flush(self.flush_seconds)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(self.flush_seconds + 30)
        return False
