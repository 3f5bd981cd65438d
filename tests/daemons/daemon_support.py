"""Start, watch and stop real JVM daemons for the tests in tests/daemons.

Every process runs in its own process group, binds to 127.0.0.1 only and is stopped by the
fixture that started it (SIGTERM to the group, SIGKILL after a grace period). Every wait is
bounded and, when it gives up, says what it waited for and shows the tail of each daemon's log.
"""

import atexit
import os
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools", "daemons"))
import fetch  # noqa: E402,F401  tools/daemons/fetch.py (jars, versions from the role defaults)

# podsim.py lives with the simulated cluster's node agent, which runs pods the same way.
sys.path.insert(0, os.path.join(REPO, "roles", "simcluster", "files", "runtime"))
from podsim import JAVA, LOOPBACK  # noqa: E402,F401  one definition for both users

_RUNNING = []
_STARTED = [0]  # daemons started so far in this session (each one's serial)


def port_is_free(port):
    """Whether nothing listens on 127.0.0.1:`port` (a fixed port a test must bind)."""
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def port_open(port):
    """Whether 127.0.0.1:`port` accepts a connection (a tcpSocket readiness probe)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port_open(daemon, port, timeout):
    """Seconds until `daemon` (just started) accepts on `port`, as a kubelet's tcpSocket readiness
    probe sees it; None after `timeout`; AssertionError if the daemon exits meanwhile."""
    return wait_probe(daemon, lambda: port_open(port), timeout)


def exec_probe(command, timeout=10):
    """An exec probe's command run as a kubelet runs it: success is exit code 0."""
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def wait_probe(daemon, probe, timeout, interval=0.5):
    """Seconds until `probe()` (a readiness probe of the just started `daemon`) passes; None after
    `timeout`; AssertionError if the daemon exits meanwhile."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not daemon.alive():
            raise AssertionError("%s exited: %s" % (daemon.name, daemon.describe()))
        if probe():
            return time.monotonic() - start
        time.sleep(interval)
    return None


def free_ports(count):
    """`count` distinct free ports (sockets held open together, so no duplicates)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((LOOPBACK, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def tail(path, lines=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return "(no log at %s)" % path


class Daemon:
    """One long-running JVM, its own process group, output in `log_path`."""

    def __init__(self, name, cmd, log_path, env=None, cwd=None):
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                         start_new_session=True)
        self.serial = _STARTED[0]
        _STARTED[0] += 1
        _RUNNING.append(self)

    def alive(self):
        return self.proc.poll() is None

    def terminate(self):
        """Send SIGTERM to the process group (what the kubelet does to stop a container)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self, grace=30):
        """SIGTERM the process group (a clean shutdown, like a pod stop), SIGKILL if it lingers."""
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self.proc.poll() is not None:
            return self.proc.returncode
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                return self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.poll()

    def describe(self):
        state = "running" if self.alive() else "exited rc=%s" % self.proc.returncode
        return "--- %s (%s), log %s:\n%s" % (self.name, state, self.log_path, tail(self.log_path))


class DaemonGroup:
    """The daemons one test started, in waves; stop_all() stops the newest wave first.

    The daemons of one wave stop together (like the pods of one StatefulSet being deleted); a
    wave that depends on an earlier one (brokers on controllers) is stopped before it, so a
    clean shutdown never waits for a peer that is already gone.
    """

    def __init__(self):
        self.waves = []

    def add(self, daemon, new_wave=True):
        if new_wave or not self.waves:
            self.waves.append([])
        self.waves[-1].append(daemon)
        return daemon

    def replace(self, old, new):
        """Put `new` (a restarted pod's daemon) where `old` was, so stop_all() stops it in order."""
        for wave in self.waves:
            if old in wave:
                wave[wave.index(old)] = new
                return new
        raise AssertionError("%s is not one of this group's daemons" % old.name)

    def stop_all(self, grace=30):
        while self.waves:
            wave = self.waves.pop()
            for daemon in wave:
                daemon.terminate()
            for daemon in wave:
                daemon.stop(grace)


def find(docs, kind, name):
    """The rendered object of `kind` named `name`."""
    for doc in docs:
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
            return doc
    raise AssertionError("no %s/%s among %s" % (kind, name, sorted(
        "%s/%s" % (d.get("kind"), d.get("metadata", {}).get("name")) for d in docs)))


def stop_leftovers(since):
    """Stop the daemons started after `since` (a running_mark()) that are still running; their
    names. A daemon no fixture stops keeps its JVM busy under every test that follows."""
    leftovers = [d for d in _RUNNING if d.serial >= since and d.alive()]
    for daemon in reversed(leftovers):
        daemon.stop(grace=5)
    return [d.name for d in leftovers]


def running_mark():
    """The serial number the next daemon will get."""
    return _STARTED[0]


@atexit.register
def _stop_leftovers():
    # Fixtures stop what they start; this only catches an interpreter exit in the middle of one.
    for daemon in list(reversed(_RUNNING)):
        daemon.stop(grace=5)


def wait_until(predicate, what, timeout, daemons=(), interval=1.0):
    """Call `predicate` until it returns a truthy value (returned) or `timeout` seconds pass.

    Fails at once when one of `daemons` exits, since waiting longer cannot help then.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - a daemon still booting refuses connections
            last_error = exc
        dead = [d for d in daemons if not d.alive()]
        if dead or time.monotonic() > deadline:
            reason = "%s exited" % ", ".join(d.name for d in dead) if dead else \
                "gave up after %ss" % timeout
            raise AssertionError("waiting for %s: %s (last error: %r)\n%s" % (
                what, reason, last_error, "\n".join(d.describe() for d in daemons)))
        time.sleep(interval)
