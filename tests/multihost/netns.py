"""A private test network of Linux network namespaces: one namespace per "host", joined by a bridge.

Each host gets a veth pair: one end (``wm0``) inside its namespace with the host's address, the
other end on a bridge in the root namespace. The bridge itself has the subnet's ``.1``, which
makes the test process a host on that network too (it is the client of the gateways). The subnet
is taken from the RFC 2544 benchmarking range (198.18.0.0/15, meant for test networks and never
routed), and only one that no interface or route of this machine uses. The namespaces get no
default route, and the root namespace gets an ``unreachable`` route for the subnet below the
bridge's own: a packet for the test network never leaves the machine, not even while the bridge
is being torn down.

Partitions: :meth:`Network.isolate` takes a host's link down (it loses every peer, like a pulled
cable); :meth:`Network.block` drops the traffic between two hosts with iptables rules inside the
first host's namespace (they go away with it); :meth:`Network.delay` adds ``tc netem`` latency.
:meth:`Network.destroy` removes everything it made, and :func:`leftovers` lists what is still
there, so a test can prove the machine is as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping, Sequence

SUBNETS = ("198.18.215", "198.18.216", "198.19.215", "198.19.216")  # /24 each, first unused wins
PREFIX = "wmt"  # every namespace and link name starts with it
RULE_COMMENT = "workmesh-multihost-test"
INNER = "wm0"  # the interface name inside each namespace
_TIMEOUT = 20.0


class NetworkError(RuntimeError):
    """A command that builds or changes the test network failed."""


def run(*argv: str, check: bool = True, timeout: float = _TIMEOUT) -> subprocess.CompletedProcess:
    """Run one command (bounded); raise :class:`NetworkError` with its output when it fails."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise NetworkError(
            f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )
    return done


def skip_reason() -> str | None:
    """Why no namespace network can be built here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install iproute2 iptables)"
    probe = f"{PREFIX}-probe-{secrets.token_hex(2)}"
    try:
        made = run("ip", "netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace: {made.stderr.strip()}"
        rules = run("ip", "netns", "exec", probe, "iptables", "-S", check=False)
        if rules.returncode != 0:
            return f"iptables does not work inside a namespace: {rules.stderr.strip()}"
    finally:
        run("ip", "netns", "del", probe, check=False)
    return None


def free_subnet() -> str | None:
    """The first of :data:`SUBNETS` that no address or route of this machine touches."""
    used = run("ip", "-4", "-o", "addr", "show").stdout + run("ip", "-4", "route", "show", "table", "all").stdout
    for subnet in SUBNETS:
        if f"{subnet}." not in used:
            return subnet
    return None


def leftovers(tag: str = PREFIX, subnet: str = "") -> list[str]:
    """Namespaces, links, routes and root iptables rules of ours still present (empty: clean).

    `tag` and `subnet` name one run's objects; another run may build its own bed at the same
    time, on another subnet of :data:`SUBNETS`.
    """
    found = [
        f"netns {line.split()[0]}" for line in run("ip", "netns", "list").stdout.splitlines() if line.startswith(tag)
    ]
    for line in run("ip", "-o", "link", "show").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(tag):
            found.append(f"link {name}")
    routes = run("ip", "-4", "route", "show", "table", "all").stdout
    mine = [subnet] if subnet else list(SUBNETS)
    found += [f"route {line}" for line in routes.splitlines() if any(f"{s}." in line for s in mine)]
    if shutil.which("iptables"):
        found += [f"iptables {line}" for line in run("iptables", "-S").stdout.splitlines() if RULE_COMMENT in line]
    return found


class Network:
    """The namespaces, veths and bridge of one test run.

    Args:
        hosts: host name → last octet of its address (2..254).

    Attributes:
        subnet: the first three octets, e.g. ``"198.18.215"``.
        tag: the run's name prefix (``wmt`` + 4 hex digits); every object it makes starts with it.
    """

    def __init__(self, hosts: Mapping[str, int]) -> None:
        self.hosts = dict(hosts)
        self.tag = f"{PREFIX}{secrets.token_hex(2)}"
        self.subnet = ""
        self.bridge = f"{self.tag}br"
        self._made_ns: list[str] = []
        self._bridge_made = False
        self._guard = ""
        self._blocks: dict[tuple[str, str], list[list[str]]] = {}

    # -- names and addresses -------------------------------------------------------------------
    def namespace(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def link(self, host: str) -> str:
        """The root-side end of the host's veth (≤ 15 characters, as Linux requires)."""
        return f"{self.tag}h{self.hosts[host]}"

    def address(self, host: str) -> str:
        """The host's IPv4 address; ``"client"`` is the test process (the bridge)."""
        return f"{self.subnet}.1" if host == "client" else f"{self.subnet}.{self.hosts[host]}"

    def wrap(self, host: str) -> tuple[str, ...]:
        """Prefix that runs a command inside the host's namespace (``ip netns exec`` execs in place)."""
        return ("ip", "netns", "exec", self.namespace(host))

    def exec(self, host: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(*self.wrap(host), *argv, check=check)

    # -- building and tearing down -------------------------------------------------------------
    def create(self) -> None:
        """Build the bridge and every host; on failure, remove what was made and raise."""
        subnet = free_subnet()
        if subnet is None:
            raise NetworkError(f"every candidate test subnet is in use here: {', '.join(SUBNETS)}")
        self.subnet = subnet
        try:
            # The guard first: from now on nothing for the subnet can take the default route.
            self._guard = f"unreachable {subnet}.0/24 metric 4242"
            run("ip", "route", "add", *self._guard.split())
            run("ip", "link", "add", self.bridge, "type", "bridge")
            self._bridge_made = True
            _no_ipv6(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6")
            run("ip", "addr", "add", f"{subnet}.1/24", "dev", self.bridge)
            run("ip", "link", "set", self.bridge, "up")
            for host in self.hosts:
                self._add_host(host)
        except BaseException:
            self.destroy()
            raise

    def _add_host(self, host: str) -> None:
        ns, link = self.namespace(host), self.link(host)
        run("ip", "netns", "add", ns)
        self._made_ns.append(ns)
        run("ip", "link", "add", link, "type", "veth", "peer", "name", INNER, "netns", ns)
        _no_ipv6(f"/proc/sys/net/ipv6/conf/{link}/disable_ipv6")
        run("ip", "link", "set", link, "master", self.bridge)
        run("ip", "link", "set", link, "up")
        self.exec(host, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6", check=False)
        self.exec(host, "ip", "link", "set", "lo", "up")
        self.exec(host, "ip", "addr", "add", f"{self.address(host)}/24", "dev", INNER)
        self.exec(host, "ip", "link", "set", INNER, "up")

    def destroy(self) -> None:
        """Remove every namespace (their veths and iptables rules go with them), the bridge and
        the guard route. Processes still inside a namespace of ours are ended by pid first."""
        for ns in reversed(self._made_ns):
            pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            # Deleting a namespace frees its veths asynchronously; deleting our end now does not.
            host = ns[len(self.tag) + 1 :]
            run("ip", "link", "del", self.link(host), check=False)
            run("ip", "netns", "del", ns, check=False)
        self._made_ns.clear()
        self._blocks.clear()
        if self._bridge_made:
            run("ip", "link", "del", self.bridge, check=False)
            self._bridge_made = False
        if self._guard:
            run("ip", "route", "del", *self._guard.split(), check=False)
            self._guard = ""

    # -- faults ---------------------------------------------------------------------------------
    def isolate(self, host: str) -> None:
        """Take the host's link down: it loses every peer at once (packets are dropped, no reset)."""
        run("ip", "link", "set", self.link(host), "down")

    def heal(self, host: str) -> None:
        """Bring the host's link back up."""
        run("ip", "link", "set", self.link(host), "up")

    def block(self, host: str, peer: str) -> None:
        """Drop every packet between `host` and `peer` (iptables inside `host`'s namespace)."""
        address = self.address(peer)
        rules = [["OUTPUT", "-d", address], ["INPUT", "-s", address]]
        for rule in rules:
            self.exec(host, "iptables", "-I", *rule, "-m", "comment", "--comment", RULE_COMMENT, "-j", "DROP")
        self._blocks[(host, peer)] = rules

    def unblock(self, host: str, peer: str) -> None:
        """Remove the rules of :meth:`block`."""
        for rule in self._blocks.pop((host, peer), []):
            self.exec(
                host, "iptables", "-D", *rule, "-m", "comment", "--comment", RULE_COMMENT, "-j", "DROP", check=False
            )

    def rules(self, host: str) -> list[str]:
        """The host namespace's iptables rules (``iptables -S``)."""
        return self.exec(host, "iptables", "-S").stdout.splitlines()

    def netem_problem(self, host: str) -> str | None:
        """Why ``tc netem`` cannot delay the host's traffic here, or None when it can."""
        if shutil.which("tc") is None:
            return "`tc` is not installed (iproute2)"
        done = self.exec(host, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", check=False)
        if done.returncode != 0:
            return f"`tc qdisc add ... netem` fails on this kernel: {done.stderr.strip()} (no sch_netem)"
        self.exec(host, "tc", "qdisc", "del", "dev", "lo", "root", check=False)
        return None

    def delay(self, host: str, milliseconds: int) -> None:
        """Delay every packet the host sends by `milliseconds` (netem on its interface)."""
        self.exec(host, "tc", "qdisc", "add", "dev", INNER, "root", "netem", "delay", f"{milliseconds}ms")

    def undelay(self, host: str) -> None:
        self.exec(host, "tc", "qdisc", "del", "dev", INNER, "root", check=False)

    def processes(self, host: str) -> Sequence[str]:
        """Pids of the processes inside the host's namespace."""
        return run("ip", "netns", "pids", self.namespace(host), check=False).stdout.split()


def _no_ipv6(path: str) -> None:
    # The test links speak IPv4 only; no router solicitations or DAD chatter on the bridge.
    with contextlib.suppress(OSError), open(path, "w") as out:
        out.write("1")
