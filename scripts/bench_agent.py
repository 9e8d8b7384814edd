#!/usr/bin/env python3
"""Faultline agent benchmark, rerunnable: sudo scripts/bench_agent.py [--runs N] [--debug | --binary PATH] [--json FILE]

Measures the agent daemon (`faultline agent`) on this machine, medians (and min/max) over N runs:
  1. submit to injected: the client's clock just before it sends POST /v1/runs (a drop scenario
     without steady-state probes, so only the agent's own work counts: parsing, planning, preflight,
     inject) to the fault's injectedAt in GET /v1/runs/{id}; and the round trip of that POST;
  2. abort to reverted across three agents: the same scenario active on 3 agents, POST /v1/abort to
     all three at once (one thread each); t0 just before sending to max(revertedAt); also per agent;
  3. idle footprint of a fresh agent that has started and answered one /healthz: VmRSS, RssAnon and
     RssFile, and CPU (utime+stime) over a window (30 s) as % of one core; the three agents are
     measured at once, right after they start (one value per agent);
  4. status requests per second while a run is active: wrk against GET /v1/runs/{id} with the bearer
     token; halfway through the wrk window an abort is sent (so the second half of the window reads
     a run that is reverting or over) and abort-to-reverted under that load is compared with the same
     measure on the same agent without load (interleaved, same run count). As a reference, the same
     wrk and abort against GET /healthz (3 runs): the HTTP stack without the status's JSON.
  5. the same status load paced at about 2,000 requests/s (--paced-rate; wrk with a per-request delay)
     instead of saturating the agent, and abort-to-reverted under it against the same abort without load.
Before the measured runs, each agent does one run that is not counted (its first, "cold").
The release build is the shipped one (`make release`, in .build: a no-op when it is current), or --binary PATH;
--debug builds the debug configuration into .build-bench/swift (not .build, which the development build uses).
Layout: a controller namespace joined by one veth pair to each of three member namespaces
(flt-bench-<pid>c, flt-bench-<pid>m0..m2; controller 10.213.(30+i).1/24, member 10.213.(30+i).2/24);
one agent runs in each member, every HTTP call (and wrk) is made from the controller namespace: this
script re-executes itself there (--inside). Nothing is applied in the root namespace. Everything it
creates is removed at the end, also on failure.
Times on both sides are wall-clock times of this host (the API's dates have millisecond resolution).
"""
import argparse, datetime, http.client, json, os, re, resource, shutil, signal, statistics, subprocess, sys, tempfile, threading, time, traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 7465
AGENTS = 3
SCENARIO = """apiVersion: faultline/v1
kind: Scenario
metadata: {name: bench-cut-off}
spec:
  maxDuration: 60s
  faults:
    - name: cut-off
      type: drop
      duration: 50s
      direction: both
"""
TARGETS = {"abort_ms": 300.0, "rss_mib": 40.0, "cpu_pct": 0.5, "req_s": 2000.0, "abort_delay_ms": 50.0}


def ignore_signals():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def stop_on_signal(signum, _frame):
    """Unwinds through the finally blocks; later signals are ignored so the cleanup runs to its end."""
    ignore_signals()
    sys.exit(128 + signum)


def cpu_busy(seconds=1.0):
    """How busy all CPUs are over `seconds`, in % (from /proc/stat; the load average says little on a VM)."""
    def sample():
        values = [int(v) for v in open("/proc/stat").readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100.0 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def sh(*argv, check=True, **kw):
    return subprocess.run(list(argv), check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def member_addr(i):
    return f"10.213.{30 + i}.2"


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "samples": [round(v, 3) for v in values]}


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class BenchError(Exception):
    pass


# ======================================================================================
# Outside: build, namespaces, cleanup, the table. Runs in the root namespace.
# ======================================================================================
class Outside:
    def __init__(self, args):
        self.args = args
        self.tag = f"flt-bench-{os.getpid()}"
        self.controller = self.tag + "c"
        self.members = [f"{self.tag}m{i}" for i in range(AGENTS)]
        self.namespaces = []
        self.inner = None
        self.work = None

    def build(self):
        config = "debug" if self.args.debug else "release"
        # The release build as it ships (`make release`, in .build; a no-op when current), or a build of its own for
        # --debug, so that benchmarking never waits on, disturbs, or is disturbed by the development build.
        flags = ["-c", "debug", "--scratch-path", os.path.join(ROOT, ".build-bench", "swift")] if self.args.debug \
            else ["-c", "release", "--static-swift-stdlib"]
        # What is measured: the commit, and whether the sources differ from it (others may be editing them).
        head = sh("git", "log", "-1", "--format=%h %s", cwd=ROOT, check=False).stdout.strip()
        dirty = [line[3:] for line in sh("git", "status", "--porcelain", "--", "Sources", "Package.swift", "Package.resolved",
                                         cwd=ROOT, check=False).stdout.splitlines()]
        self.source = {"commit": head, "modified": dirty}
        print(f"building faultline ({config}) at {head[:60]}{' + uncommitted changes in ' + ', '.join(dirty) if dirty else ''} ...", flush=True)
        if self.args.binary:
            built = os.path.abspath(self.args.binary)
        else:
            result = sh("swift", "build", *flags, "--product", "faultline", cwd=ROOT, check=False)
            if result.returncode != 0:
                sys.exit(f"swift build failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
            built = os.path.join(sh("swift", "build", *flags, "--show-bin-path", cwd=ROOT).stdout.strip(), "faultline")
        self.work = tempfile.mkdtemp(prefix="flt-bench-agent-")  # after the build: a failed build leaves nothing behind
        # A private copy: the agents (and the guards they start from /proc/self/exe) keep using the same
        # binary even if the build folder is rebuilt meanwhile.
        self.exe = os.path.join(self.work, "faultline")
        shutil.copy2(built, self.exe)
        self.config = config

    def ensure_wrk(self):
        if shutil.which("wrk"):
            return
        print("installing wrk (apt-get) ...", flush=True)
        result = sh("apt-get", "install", "-y", "-q", "wrk", check=False, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if result.returncode != 0 or not shutil.which("wrk"):
            sys.exit(f"cannot install wrk: {result.stderr.strip()[-500:]}")

    def setup_network(self):
        sh("ip", "netns", "add", self.controller)
        self.namespaces.append(self.controller)
        sh("ip", "-n", self.controller, "link", "set", "lo", "up")
        for i, member in enumerate(self.members):
            sh("ip", "netns", "add", member)
            self.namespaces.append(member)
            sh("ip", "netns", "exec", member, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0")
            sh("ip", "-n", self.controller, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", member)
            sh("ip", "-n", self.controller, "addr", "add", f"10.213.{30 + i}.1/24", "dev", f"v{i}")
            sh("ip", "-n", member, "addr", "add", f"{member_addr(i)}/24", "dev", "eth0")
            sh("ip", "-n", self.controller, "link", "set", f"v{i}", "up")
            sh("ip", "-n", member, "link", "set", "eth0", "up")
            sh("ip", "-n", member, "link", "set", "lo", "up")

    def run_inside(self):
        token = os.urandom(24).hex()
        token_file = os.path.join(self.work, "token")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (token + "\n").encode())
        os.close(fd)
        config = {
            "exe": self.exe, "work": self.work, "token": token, "token_file": token_file, "members": self.members,
            "runs": self.args.runs, "idle_window": self.args.idle_window, "wrk_threads": self.args.wrk_threads,
            "wrk_connections": self.args.wrk_connections, "wrk_duration": self.args.wrk_duration, "paced_rate": self.args.paced_rate,
            "results": os.path.join(self.work, "results.json"),
        }
        config_path = os.path.join(self.work, "config.json")
        with open(config_path, "w") as f:
            json.dump(config, f)
        self.inner = subprocess.Popen(["ip", "netns", "exec", self.controller, sys.executable, os.path.abspath(__file__), "--inside", config_path])
        code = self.inner.wait()
        if code != 0:
            raise BenchError(f"the measurement (inside {self.controller}) failed with exit {code}")
        with open(config["results"]) as f:
            return json.load(f)

    def cleanup(self):
        ignore_signals()  # a second Ctrl-C or TERM (e.g. timeout(1) signals the whole group too) must not cut it short
        if self.inner is not None and self.inner.poll() is None:
            self.inner.send_signal(signal.SIGTERM)  # it stops its agents (they revert) and exits
            try:
                self.inner.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.inner.kill(); self.inner.wait()
        # Whatever still lives in our namespaces (an agent, a guard, wrk) is ours: TERM, then KILL.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.namespace_pids()
            for pid in pids:
                try: os.kill(pid, sig)
                except OSError: pass
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline and self.namespace_pids():
                time.sleep(0.05)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        if self.work:
            if self.args.logs:
                os.makedirs(self.args.logs, exist_ok=True)
                for name in os.listdir(self.work):
                    if name.endswith(".log"):
                        shutil.copy(os.path.join(self.work, name), self.args.logs)
            shutil.rmtree(self.work, ignore_errors=True)

    def namespace_pids(self):
        pids = set()
        for ns in self.namespaces:
            out = sh("ip", "netns", "pids", ns, check=False).stdout
            pids.update(int(p) for p in out.split() if p.isdigit())
        pids.discard(os.getpid())
        return sorted(pids)


def fmt(v, unit="ms", width=9, digits=1):
    if v is None:
        return "—".rjust(width)
    return f"{v:{width}.{digits}f}"


def print_table(results):
    T = TARGETS
    print("\n" + "=" * 100)
    m = results["machine"]
    print(f"faultline agent benchmark: {results['build']} build, {results['runs']} runs, {m['cores']} cores, "
          f"kernel {m['kernel']}, CPU busy before the start {m['cpu_busy_start_pct']:.0f} %")
    src = results.get("source", {})
    print(f"source: {src.get('commit', '?')[:90]}" + (f" + uncommitted changes in {', '.join(src['modified'])}" if src.get("modified") else ""))
    print("=" * 100)
    print(f"{'measure':<58}{'median':>10}{'min':>10}{'max':>10}   target")
    rows = []

    def row(label, s, unit, target=""):
        if s is None:
            rows.append(f"{label:<58}{'—':>10}{'':>10}{'':>10}   {target}")
        else:
            d = {"MiB": 2, "%": 3, "n": 0}.get(unit, 1)
            rows.append(f"{label:<58}{s['median']:>10.{d}f}{s['min']:>10.{d}f}{s['max']:>10.{d}f}   {target}")

    def verdict(ok):
        return "PASS" if ok else "MISS"

    s = results["submit"]
    rows.append("1. submit to injected (agent 1, drop, no probes)")
    row("   POST sent -> fault injectedAt  [ms]", s["to_injected_ms"], "ms")
    row("   POST /v1/runs round trip  [ms]", s["post_rtt_ms"], "ms")
    row("     of which: POST sent -> run 'start' event  [ms]", s["to_start_ms"], "ms")
    row("               'start' -> 'method' (journal, guard)  [ms]", s["start_to_method_ms"], "ms")
    row("               'method' -> 'inject' (iptables)  [ms]", s["method_to_inject_ms"], "ms")
    if s.get("cold_ms") is not None:
        rows.append(f"   (first run on the fresh agent, not in the figures above: {s['cold_ms']:.1f} ms)")
    a = results["abort3"]
    ok = a["max_ms"] is not None and a["max_ms"]["median"] <= T["abort_ms"]
    rows.append("2. abort to reverted, POST /v1/abort to 3 agents at once")
    row("   t0 -> max(revertedAt) over the 3 agents  [ms]", a["max_ms"], "ms", f"<= {T['abort_ms']:.0f} ms  {verdict(ok)}")
    for i, per in enumerate(a["per_agent_ms"]):
        row(f"   agent {i + 1}: t0 -> revertedAt  [ms]", per, "ms")
    row("   t0 -> agent logged the abort (max of 3)  [ms]", a["to_abort_logged_ms"], "ms")
    row("   POST /v1/abort round trip (max of 3)  [ms]", a["post_rtt_ms"], "ms")
    idle = results["idle"]
    rows.append(f"3. idle fresh agent (after one /healthz), {idle['window_s']:.0f} s window, one value per agent")
    rss_ok = idle["vmrss_mib"]["max"] < T["rss_mib"]
    cpu_ok = idle["cpu_pct"]["max"] < T["cpu_pct"]
    row("   VmRSS  [MiB]", idle["vmrss_mib"], "MiB", f"< {T['rss_mib']:.0f} MiB  {verdict(rss_ok)}")
    row("   RssAnon  [MiB]", idle["rssanon_mib"], "MiB")
    row("   RssFile (mapped binary and libraries)  [MiB]", idle["rssfile_mib"], "MiB")
    row("   CPU (utime+stime) [% of one core]", idle["cpu_pct"], "%", f"< {T['cpu_pct']} %  {verdict(cpu_ok)}")
    row("   threads", idle["threads"], "n")
    w = results["load"]
    rows.append(f"4. GET /v1/runs/{{id}} under wrk -t{w['wrk_threads']} -c{w['wrk_connections']} -d{w['wrk_duration']}s "
                f"(agent 1, run active; abort at {w['wrk_duration'] / 2:.0f} s)")
    rq_ok = w["req_s"]["median"] >= T["req_s"]
    row("   requests/s", w["req_s"], "ms", f">= {T['req_s']:.0f}  {verdict(rq_ok)}")
    row("   latency p50  [ms]", w["lat_p50_ms"], "ms")
    row("   latency p99  [ms]", w["lat_p99_ms"], "ms")
    row("   CPU of the agent during the wrk window [% of one core]", w["agent_cpu_pct"], "ms")
    row("   CPU of wrk [% of one core]", w["wrk_cpu_pct"], "ms")
    row("   abort to reverted, 1 agent, no load  [ms]", w["abort_idle_ms"], "ms")
    delay = w["abort_load_ms"]["median"] - w["abort_idle_ms"]["median"]
    nd_ok = w["abort_load_ms"]["median"] <= T["abort_ms"] and delay <= T["abort_delay_ms"]
    row("   abort to reverted, 1 agent, under wrk  [ms]", w["abort_load_ms"], "ms",
        f"not delayed  {verdict(nd_ok)} ({delay:+.1f} ms)")
    row("   POST /v1/abort round trip under wrk  [ms]", w["abort_load_rtt_ms"], "ms")
    row("   t0 -> agent logged the abort, under wrk  [ms]", w["abort_load_logged_ms"], "ms")
    ref = w.get("healthz_reference")
    if ref:
        rows.append(f"   reference: the same wrk against GET /healthz (no JSON), {ref['req_s']['n']} run(s)")
        row("     requests/s", ref["req_s"], "ms")
        row("     CPU of the agent [% of one core]", ref["agent_cpu_pct"], "ms")
        row("     abort to reverted under that load  [ms]", ref["abort_ms"], "ms")
    if w.get("errors"):
        rows.append(f"   wrk errors: {w['errors']}")
    p = results.get("paced")
    if p:
        rows.append(f"5. GET /v1/runs/{{id}} paced at about {p['rate']} req/s (agent 1, run active; abort halfway)")
        row("   requests/s", p["req_s"], "ms", f">= {T['req_s']:.0f}  {verdict(p['req_s']['median'] >= T['req_s'])}")
        row("   latency p99  [ms]", p["lat_p99_ms"], "ms")
        row("   CPU of the agent [% of one core]", p["agent_cpu_pct"], "ms")
        row("   abort to reverted, no load  [ms]", p["abort_idle_ms"], "ms")
        paced_delay = p["abort_load_ms"]["median"] - p["abort_idle_ms"]["median"]
        paced_ok = p["abort_load_ms"]["median"] <= T["abort_ms"] and paced_delay <= T["abort_delay_ms"]
        row("   abort to reverted, paced load  [ms]", p["abort_load_ms"], "ms", f"not delayed  {verdict(paced_ok)} ({paced_delay:+.1f} ms)")
    if results.get("rss_after_load_mib") is not None:
        rows.append(f"   agent 1 VmRSS after all of the above: {results['rss_after_load_mib']:.1f} MiB")
    print("\n".join(rows))
    print(f"(\"not delayed\": under-load median within {T['abort_ms']:.0f} ms and at most {T['abort_delay_ms']:.0f} ms above the no-load median; "
          f"MiB = 2^20 bytes)")
    if results.get("agent_warnings"):
        print("unexpected warnings/errors in the agents' logs:")
        for line in results["agent_warnings"][:10]:
            print("  " + line)
    print(f"took {results['elapsed_s']:.0f} s")


def outside_main(args):
    if os.geteuid() != 0:
        sys.exit("bench_agent.py needs root (namespaces, iptables)")
    # A TERM or HUP (not only Ctrl-C) unwinds through the cleanup below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop_on_signal)
    started = time.monotonic()
    outside = Outside(args)
    outside.build()
    results = None
    try:
        outside.ensure_wrk()
        outside.setup_network()
        busy = cpu_busy()
        print(f"machine: {os.cpu_count()} cores, kernel {os.uname().release}; CPU busy before the start: {busy:.0f} %", flush=True)
        if busy > 10:
            print("  note: something else is using the CPU; the figures may be noisy", flush=True)
        results = outside.run_inside()
    finally:
        outside.cleanup()
    results["build"] = outside.config
    results["source"] = outside.source
    results["elapsed_s"] = time.monotonic() - started
    results["targets"] = TARGETS
    print_table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"figures written to {args.json}")


# ======================================================================================
# Inside: the agents and every measurement. Runs in the controller namespace.
# ======================================================================================
class Client:
    """One keep-alive HTTP connection to one agent, from the controller namespace."""

    def __init__(self, host, token):
        self.host, self.token, self.conn = host, token, None

    def connect(self):
        self.close()
        self.conn = http.client.HTTPConnection(self.host, PORT, timeout=15)
        self.conn.connect()

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, method, path, body=None, auth=True):
        """Sends on the open connection; returns (status, bytes, t_sent, t_answered) in wall-clock seconds."""
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        if body is not None:
            headers["Content-Type"] = "application/yaml"
        t_sent = time.time()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        t_answered = time.time()
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status, data, t_sent, t_answered

    def call(self, method, path, body=None, auth=True, fresh=False):
        """A request on a (re)opened connection; a GET is retried once if the kept connection was closed."""
        if fresh or self.conn is None:
            self.connect()
        try:
            return self.send(method, path, body, auth)
        except (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError, ConnectionResetError):
            if method != "GET":
                raise
            self.connect()
            return self.send(method, path, body, auth)

    def json(self, method, path, expect=200, body=None):
        status, data, _, _ = self.call(method, path, body)
        if status != expect:
            raise BenchError(f"{method} {path} on {self.host}: HTTP {status}: {data[:500]!r}")
        return json.loads(data)


class Agent:
    def __init__(self, inside, index):
        self.inside, self.index = inside, index
        self.member = inside.cfg["members"][index]
        self.host = member_addr(index)
        self.state = os.path.join(inside.cfg["work"], f"state-{index + 1}")
        self.log = os.path.join(inside.cfg["work"], f"agent-{index + 1}.log")
        self.process = None
        self.client = Client(self.host, inside.cfg["token"])

    def start(self):
        argv = ["ip", "netns", "exec", self.member, self.inside.cfg["exe"], "agent", "--listen", f"{self.host}:{PORT}",
                "--token-file", self.inside.cfg["token_file"], "--state-dir", self.state, "--log-format", "json",
                # Plain HTTP between the bench's own scratch namespaces (the agent refuses it off loopback otherwise).
                "--insecure-http"]
        with open(self.log, "ab") as log:
            # `ip netns exec` execs the command: this pid is the agent's.
            self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)

    def wait_listening(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"agent {self.index + 1} exited {self.process.returncode}:\n{self.tail()}")
            if "faultline agent listening on" in open(self.log, errors="replace").read():
                return
            time.sleep(0.01)
        raise BenchError(f"agent {self.index + 1} did not start listening within {timeout}s:\n{self.tail()}")

    def healthz(self):
        status, data, _, _ = self.client.call("GET", "/healthz", auth=False, fresh=True)
        if status != 200 or data.strip() != b"ok":
            raise BenchError(f"agent {self.index + 1} /healthz: HTTP {status} {data!r}")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.client.close()
        self.process.send_signal(signal.SIGTERM)  # it reverts whatever still runs, then exits
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"  agent {self.index + 1} did not stop on SIGTERM within 15 s; killing it", flush=True)
            self.process.kill(); self.process.wait()

    def tail(self, lines=15):
        try:
            return "".join(open(self.log, errors="replace").readlines()[-lines:])
        except OSError:
            return "(no log)"

    def proc_status(self):
        fields = {}
        for line in open(f"/proc/{self.process.pid}/status"):
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return fields

    def cpu_ticks(self):
        text = open(f"/proc/{self.process.pid}/stat").read()
        rest = text[text.rindex(")") + 2:].split()
        return int(rest[11]) + int(rest[12])  # utime + stime (fields 14 and 15)

    def logged_events(self):
        events = []
        for line in open(self.log, errors="replace"):
            if line.startswith("{"):
                try: events.append(json.loads(line))
                except ValueError: pass
        return events

    def abort_logged_at(self, run_id):
        for e in self.logged_events():
            if e.get("event") == "abort" and e.get("run") == run_id:
                return parse_time(e["ts"])
        return None

    # -- the API ---------------------------------------------------------------------------
    def submit(self):
        """POST /v1/runs on a freshly opened connection; returns (id, t_sent, t_answered)."""
        self.client.connect()
        status, data, t_sent, t_answered = self.client.send("POST", "/v1/runs", SCENARIO)
        if status != 201:
            raise BenchError(f"agent {self.index + 1}: POST /v1/runs: HTTP {status}: {data[:800]!r}\n{self.tail()}")
        return json.loads(data)["id"], t_sent, t_answered

    def status(self, run_id):
        return self.client.json("GET", f"/v1/runs/{run_id}")

    def wait(self, run_id, what, timeout=20, interval=0.005):
        """Polls the run until `what` holds: 'injected' (fault active with injectedAt), 'reverted' (revertedAt), 'final'."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(run_id)
            fault = status["faults"][0]
            final = status["state"] in ("succeeded", "deviated", "aborted", "failed")
            if what == "injected":
                if fault.get("injectedAt"):
                    return status
                if final or fault["state"] in ("failed", "not-injected"):
                    raise BenchError(f"agent {self.index + 1}: run {run_id} did not inject: {json.dumps(status)}\n{self.tail()}")
            elif what == "reverted":
                if fault.get("revertedAt"):
                    return status
                if fault["state"] == "revert-failed" or (final and not fault.get("revertedAt")):
                    raise BenchError(f"agent {self.index + 1}: run {run_id} did not revert: {json.dumps(status)}\n{self.tail()}")
            elif final:
                if status["state"] != "aborted" or fault["state"] != "reverted":
                    raise BenchError(f"agent {self.index + 1}: run {run_id} ended {status['state']}, fault {fault['state']}: "
                                     f"{json.dumps(status)}\n{self.tail()}")
                return status
            if time.monotonic() > deadline:
                raise BenchError(f"agent {self.index + 1}: run {run_id} not {what} after {timeout}s: {json.dumps(status)}\n{self.tail()}")
            time.sleep(interval)

    def events(self, run_id):
        status, data, _, _ = self.client.call("GET", f"/v1/runs/{run_id}/events?follow=false")
        if status != 200:
            raise BenchError(f"events of {run_id}: HTTP {status}")
        out = []
        for line in data.decode().splitlines():
            if line.startswith("data: "):
                obj = json.loads(line[6:])
                if "seq" in obj:
                    out.append(obj)
        return out

    def event_time(self, events, name):
        for e in events:
            if e["event"] == name:
                return parse_time(e["ts"])
        return None

    def abort_all(self):
        """POST /v1/abort on the open connection; returns (t_sent, t_answered)."""
        status, data, t_sent, t_answered = self.client.send("POST", "/v1/abort")
        if status != 200:
            raise BenchError(f"agent {self.index + 1}: POST /v1/abort: HTTP {status}: {data[:500]!r}")
        return t_sent, t_answered

    def abort_and_end(self, run_id):
        self.client.json("POST", f"/v1/runs/{run_id}/abort")
        self.wait(run_id, "final")


class Inside:
    def __init__(self, cfg):
        self.cfg = cfg
        self.runs = cfg["runs"]
        self.agents = [Agent(self, i) for i in range(len(cfg["members"]))]
        self.wrk = None

    def say(self, text):
        print(text, flush=True)

    # -- 3. idle ---------------------------------------------------------------------------
    def start_agents_and_idle(self):
        window = self.cfg["idle_window"]
        for agent in self.agents:
            agent.start()
        for agent in self.agents:
            agent.wait_listening()
        begin = {}
        for agent in self.agents:
            agent.healthz()
            agent.client.close()
            begin[agent.index] = (time.monotonic(), agent.cpu_ticks())
            exe = os.readlink(f"/proc/{agent.process.pid}/exe")
            if os.path.basename(exe) != "faultline":
                raise BenchError(f"pid {agent.process.pid} is {exe}, not the agent")
        self.say(f"\n3. idle: 3 fresh agents answered /healthz; watching them for {window:.0f} s ...")
        time.sleep(window)
        tick = os.sysconf("SC_CLK_TCK")
        vmrss, anon, rssfile, cpu, threads = [], [], [], [], []
        for agent in self.agents:
            t_begin, c_begin = begin[agent.index]
            ticks = agent.cpu_ticks() - c_begin
            elapsed = time.monotonic() - t_begin
            status = agent.proc_status()
            vmrss.append(int(status["VmRSS"].split()[0]) / 1024)
            anon.append(int(status["RssAnon"].split()[0]) / 1024)
            rssfile.append(int(status["RssFile"].split()[0]) / 1024)
            threads.append(int(status["Threads"]))
            cpu.append(ticks / tick / elapsed * 100)
            self.say(f"   agent {agent.index + 1}: VmRSS {vmrss[-1]:.1f} MiB, RssAnon {anon[-1]:.1f} MiB, RssFile {rssfile[-1]:.1f} MiB, "
                     f"CPU {cpu[-1]:.3f} % ({ticks} ticks in {elapsed:.1f} s), {threads[-1]} threads")
        return {"window_s": window, "vmrss_mib": stats(vmrss), "rssanon_mib": stats(anon), "rssfile_mib": stats(rssfile), "cpu_pct": stats(cpu), "threads": stats(threads)}

    # -- 1. submit to injected ----------------------------------------------------------------
    def submit_once(self, agent):
        run_id, t_sent, t_answered = agent.submit()
        status = agent.wait(run_id, "injected")
        injected = parse_time(status["faults"][0]["injectedAt"])
        events = agent.events(run_id)
        start, method = agent.event_time(events, "start"), agent.event_time(events, "method")
        inject = agent.event_time(events, "inject")
        agent.abort_and_end(run_id)
        return {
            "to_injected_ms": (injected - t_sent) * 1000, "post_rtt_ms": (t_answered - t_sent) * 1000,
            "to_start_ms": (start - t_sent) * 1000 if start else None,
            "start_to_method_ms": (method - start) * 1000 if start and method else None,
            "method_to_inject_ms": (inject - method) * 1000 if inject and method else None,
        }

    def submit_to_injected(self):
        self.say(f"\n1. submit to injected, agent 1, {self.runs} runs (+1 cold run, not counted):")
        agent = self.agents[0]
        cold = self.submit_once(agent)
        self.say(f"   cold: {cold['to_injected_ms']:.1f} ms (POST round trip {cold['post_rtt_ms']:.1f} ms)")
        # The other agents' first runs, so that item 2 measures warm agents too.
        for other in self.agents[1:]:
            self.submit_once(other)
        samples = []
        for r in range(self.runs):
            time.sleep(0.2)
            sample = self.submit_once(agent)
            samples.append(sample)
            self.say(f"   run {r + 1}: injected {sample['to_injected_ms']:6.1f} ms after the POST was sent; "
                     f"POST round trip {sample['post_rtt_ms']:5.1f} ms; start {fmt(sample['to_start_ms'], width=5)}, "
                     f"method +{fmt(sample['start_to_method_ms'], width=4)}, inject +{fmt(sample['method_to_inject_ms'], width=4)}")
        out = {key: stats([s[key] for s in samples]) for key in samples[0]}
        out["cold_ms"] = cold["to_injected_ms"]
        return out

    # -- 2. abort to reverted across three agents -----------------------------------------------
    def abort_round(self, agents, settle=0.3):
        """The scenario active on `agents`, then POST /v1/abort to all at once; times relative to t0 in ms."""
        ids = [agent.submit()[0] for agent in agents]
        for agent, run_id in zip(agents, ids):
            agent.wait(run_id, "injected")
        time.sleep(settle)
        for agent in agents:
            agent.client.connect()
        go = threading.Event()
        sent = [None] * len(agents)
        errors = []

        def fire(k):
            go.wait()
            try:
                sent[k] = agents[k].abort_all()
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=fire, args=(k,)) for k in range(len(agents))]
        for t in threads: t.start()
        time.sleep(0.02)  # every thread waits on `go`
        t0 = time.time()
        go.set()
        for t in threads: t.join()
        if errors:
            raise errors[0]
        reverted = []
        for agent, run_id in zip(agents, ids):
            status = agent.wait(run_id, "reverted")
            reverted.append((parse_time(status["faults"][0]["revertedAt"]) - t0) * 1000)
        for agent, run_id in zip(agents, ids):
            agent.wait(run_id, "final")
        logged = [agent.abort_logged_at(run_id) for agent, run_id in zip(agents, ids)]
        return {
            "per_agent_ms": reverted, "max_ms": max(reverted),
            "post_rtt_ms": max((b - t0) * 1000 for a, b in sent),
            "to_abort_logged_ms": max((t - t0) * 1000 for t in logged) if all(logged) else None,
        }

    def abort_three(self):
        self.say(f"\n2. abort to reverted, POST /v1/abort to 3 agents at once, {self.runs} runs:")
        samples = []
        for r in range(self.runs):
            sample = self.abort_round(self.agents)
            samples.append(sample)
            per = " / ".join(f"{v:.1f}" for v in sample["per_agent_ms"])
            self.say(f"   run {r + 1}: all reverted {sample['max_ms']:6.1f} ms after t0 (agents {per} ms); "
                     f"abort logged {fmt(sample['to_abort_logged_ms'], width=5)} ms; POST round trip {sample['post_rtt_ms']:.1f} ms")
        return {
            "max_ms": stats([s["max_ms"] for s in samples]),
            "per_agent_ms": [stats([s["per_agent_ms"][i] for s in samples]) for i in range(len(self.agents))],
            "post_rtt_ms": stats([s["post_rtt_ms"] for s in samples]),
            "to_abort_logged_ms": stats([s["to_abort_logged_ms"] for s in samples]),
        }

    # -- 4. status requests under load, and abort under that load -------------------------------
    @staticmethod
    def duration_ms(text):
        m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]

    def parse_wrk(self, out):
        result = {"errors": None}
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        result["req_s"] = float(m.group(1)) if m else None
        for pct in ("50", "90", "99"):
            m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
            result[f"p{pct}"] = self.duration_ms(m.group(1)) if m else None
        m = re.search(r"(\d+) requests in", out)
        result["requests"] = int(m.group(1)) if m else None
        problems = []
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if m: problems.append(f"{m.group(1)} non-2xx")
        m = re.search(r"Socket errors: (.*)", out)
        if m: problems.append("socket errors: " + m.group(1).strip())
        result["errors"] = "; ".join(problems) or None
        return result

    def load_round(self, agent, path=None, delay_ms=None):
        """A run active on `agent`, wrk against its status (or `path`), an abort halfway through the wrk window.
        With `delay_ms`, each wrk connection waits that long before each request (a paced load, not a saturating one)."""
        c = self.cfg
        run_id, _, _ = agent.submit()
        agent.wait(run_id, "injected")
        url = f"http://{agent.host}:{PORT}" + (path or f"/v1/runs/{run_id}")
        argv = ["wrk", f"-t{c['wrk_threads']}", f"-c{c['wrk_connections']}", f"-d{c['wrk_duration']}s", "--latency",
                "-H", f"Authorization: Bearer {c['token']}"]
        script = None
        if delay_ms is not None:
            fd, script = tempfile.mkstemp(prefix="flt-bench-wrk-", suffix=".lua")
            with os.fdopen(fd, "w") as f:
                f.write(f"function delay() return {int(delay_ms)} end\n")
            argv += ["-s", script]
        argv.append(url)
        try:
            return self._load_round(agent, run_id, argv)
        finally:
            if script: os.unlink(script)

    def _load_round(self, agent, run_id, argv):
        c = self.cfg
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        agent_before = agent.cpu_ticks()
        self.wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started = time.monotonic()
        time.sleep(max(0.0, started + c["wrk_duration"] / 2 - time.monotonic()))
        if self.wrk.poll() is not None:
            raise BenchError(f"wrk ended early: {self.wrk.stdout.read()}")
        # The run must still be active when the abort is sent.
        if agent.status(run_id)["faults"][0]["state"] != "active":
            raise BenchError(f"run {run_id} is no longer active under load")
        agent.client.connect()
        t0 = time.time()
        _, t_answered = agent.abort_all()
        status = agent.wait(run_id, "reverted", interval=0.02)
        reverted = (parse_time(status["faults"][0]["revertedAt"]) - t0) * 1000
        try:
            out, _ = self.wrk.communicate(timeout=c["wrk_duration"] + 30)
        finally:
            if self.wrk.poll() is None:
                self.wrk.kill(); self.wrk.wait()
        self.wrk = None
        window = time.monotonic() - started
        agent_cpu = (agent.cpu_ticks() - agent_before) / os.sysconf("SC_CLK_TCK") / window * 100
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child reaped meanwhile
        wrk_cpu = ((children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime - children_before.ru_stime)) / window * 100
        agent.wait(run_id, "final")
        logged = agent.abort_logged_at(run_id)
        w = self.parse_wrk(out)
        if w["req_s"] is None:
            raise BenchError(f"cannot read wrk's output:\n{out}")
        return {"abort_ms": reverted, "rtt_ms": (t_answered - t0) * 1000, "agent_cpu_pct": agent_cpu, "wrk_cpu_pct": wrk_cpu,
                "logged_ms": (logged - t0) * 1000 if logged else None, **w}

    def under_load(self):
        c = self.cfg
        self.say(f"\n4. GET /v1/runs/{{id}} with wrk -t{c['wrk_threads']} -c{c['wrk_connections']} -d{c['wrk_duration']}s on agent 1, "
                 f"abort after {c['wrk_duration'] / 2:.0f} s; interleaved with the same abort without load; {self.runs} runs:")
        agent = self.agents[0]
        idle, load = [], []
        for r in range(self.runs):
            time.sleep(0.3)
            quiet = self.abort_round([agent], settle=0.5)
            idle.append(quiet["max_ms"])
            time.sleep(0.3)
            sample = self.load_round(agent)
            load.append(sample)
            self.say(f"   run {r + 1}: no load: reverted {quiet['max_ms']:6.1f} ms after t0 | under wrk: {sample['req_s']:8.0f} req/s, "
                     f"p50 {sample['p50']:.2f} ms, p99 {sample['p99']:.2f} ms; abort: logged {fmt(sample['logged_ms'], width=5)} ms, "
                     f"reverted {sample['abort_ms']:6.1f} ms after t0, POST round trip {sample['rtt_ms']:.1f} ms; "
                     f"CPU agent {sample['agent_cpu_pct']:.0f} %, wrk {sample['wrk_cpu_pct']:.0f} %"
                     + (f"; wrk: {sample['errors']}" if sample["errors"] else ""))
        errors = [s["errors"] for s in load if s["errors"]]
        return {
            "wrk_threads": c["wrk_threads"], "wrk_connections": c["wrk_connections"], "wrk_duration": c["wrk_duration"],
            "req_s": stats([s["req_s"] for s in load]), "lat_p50_ms": stats([s["p50"] for s in load]),
            "lat_p90_ms": stats([s["p90"] for s in load]), "lat_p99_ms": stats([s["p99"] for s in load]),
            "abort_idle_ms": stats(idle), "abort_load_ms": stats([s["abort_ms"] for s in load]),
            "abort_load_rtt_ms": stats([s["rtt_ms"] for s in load]),
            "abort_load_logged_ms": stats([s["logged_ms"] for s in load]),
            "agent_cpu_pct": stats([s["agent_cpu_pct"] for s in load]), "wrk_cpu_pct": stats([s["wrk_cpu_pct"] for s in load]),
            "errors": "; ".join(errors) if errors else None,
        }

    def odd_log_lines(self):
        """Warnings and errors in the agents' logs beyond the expected ones (the aborts this benchmark sends)."""
        odd = []
        for agent in self.agents:
            for line in open(agent.log, errors="replace"):
                line = line.strip()
                if not line.startswith("{"):
                    if not line.startswith(("faultline agent listening on", "faultline agent stopped")):
                        odd.append(f"agent {agent.index + 1}: {line[:300]}")
                    continue
                try: e = json.loads(line)
                except ValueError:
                    odd.append(f"agent {agent.index + 1}: {line[:300]}"); continue
                if e.get("level") not in ("warning", "error"):
                    continue
                if e.get("event") in ("abort", "end") and "aborted by the controller" in e.get("msg", ""):
                    continue
                odd.append(f"agent {agent.index + 1}: {e.get('event')}: {e.get('msg')}")
        return odd[:50]

    def paced(self):
        """The issue's figure: about 2,000 status requests per second (wrk paced with a per-request delay), and
        whether an abort under that load is slower than without it."""
        c = self.cfg
        rounds = self.runs
        delay_ms = max(1, int(c["wrk_connections"] * 1000 / c["paced_rate"]) - 1)
        self.say(f"\n5. GET /v1/runs/{{id}} paced at about {c['paced_rate']} req/s (wrk -c{c['wrk_connections']}, {delay_ms} ms between a "
                 f"connection's requests), abort halfway; interleaved with the same abort without load; {rounds} runs:")
        agent = self.agents[0]
        idle, load = [], []
        for r in range(rounds):
            time.sleep(0.3)
            idle.append(self.abort_round([agent], settle=0.5)["max_ms"])
            time.sleep(0.3)
            sample = self.load_round(agent, delay_ms=delay_ms)
            load.append(sample)
            self.say(f"   run {r + 1}: no load: reverted {idle[-1]:6.1f} ms | paced: {sample['req_s']:7.0f} req/s, p99 {sample['p99']:.2f} ms; "
                     f"abort reverted {sample['abort_ms']:6.1f} ms after t0; CPU agent {sample['agent_cpu_pct']:.0f} %"
                     + (f"; wrk: {sample['errors']}" if sample["errors"] else ""))
        return {"rate": c["paced_rate"], "delay_ms": delay_ms, "req_s": stats([s["req_s"] for s in load]),
                "lat_p99_ms": stats([s["p99"] for s in load]), "agent_cpu_pct": stats([s["agent_cpu_pct"] for s in load]),
                "abort_idle_ms": stats(idle), "abort_load_ms": stats([s["abort_ms"] for s in load])}

    def reference_healthz(self):
        """The same wrk and abort, against GET /healthz (no JSON): what the HTTP stack alone does, and whether
        load as such delays an abort."""
        rounds = min(3, self.runs)
        self.say(f"   reference, {rounds} run(s): the same wrk against GET /healthz, abort halfway:")
        samples = []
        for _ in range(rounds):
            time.sleep(0.3)
            sample = self.load_round(self.agents[0], path="/healthz")
            samples.append(sample)
            self.say(f"   /healthz: {sample['req_s']:8.0f} req/s, p50 {sample['p50']:.2f} ms, p99 {sample['p99']:.2f} ms; "
                     f"abort reverted {sample['abort_ms']:6.1f} ms after t0; CPU agent {sample['agent_cpu_pct']:.0f} %"
                     + (f"; wrk: {sample['errors']}" if sample["errors"] else ""))
        return {"req_s": stats([s["req_s"] for s in samples]), "lat_p50_ms": stats([s["p50"] for s in samples]),
                "lat_p99_ms": stats([s["p99"] for s in samples]), "abort_ms": stats([s["abort_ms"] for s in samples]),
                "agent_cpu_pct": stats([s["agent_cpu_pct"] for s in samples])}

    def main(self):
        results = {"runs": self.runs, "machine": {"cores": os.cpu_count(), "kernel": os.uname().release,
                                                  "cpu_busy_start_pct": round(cpu_busy(), 1),
                                                  "loadavg_start": " ".join(open("/proc/loadavg").read().split()[:3])}}
        try:
            results["idle"] = self.start_agents_and_idle()
            results["submit"] = self.submit_to_injected()
            results["abort3"] = self.abort_three()
            results["load"] = self.under_load()
            results["load"]["healthz_reference"] = self.reference_healthz()
            results["paced"] = self.paced()
            results["rss_after_load_mib"] = int(self.agents[0].proc_status()["VmRSS"].split()[0]) / 1024
            results["machine"]["loadavg_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
            results["agent_warnings"] = self.odd_log_lines()
        finally:
            ignore_signals()
            if self.wrk is not None and self.wrk.poll() is None:
                self.wrk.kill(); self.wrk.wait()
            for agent in self.agents:
                agent.stop()
        for agent in self.agents:
            if "every run was reverted" not in agent.tail(5):
                results.setdefault("agent_warnings", []).append(f"agent {agent.index + 1} did not log a clean stop:\n{agent.tail(5)}")
        with open(self.cfg["results"], "w") as f:
            json.dump(results, f)


def inside_main(config_path):
    # The outside stops us with SIGTERM: unwind through the finally blocks (the agents are stopped).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop_on_signal)
    with open(config_path) as f:
        cfg = json.load(f)
    inside = Inside(cfg)
    try:
        inside.main()
    except BenchError as error:
        print(f"\nFAILED: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        for agent in inside.agents:
            print(f"--- agent {agent.index + 1} log (tail) ---\n{agent.tail()}", file=sys.stderr)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--debug", action="store_true", help="benchmark the debug build (default: release)")
    parser.add_argument("--binary", metavar="PATH", help="benchmark this faultline binary instead of building one")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument("--idle-window", type=float, default=30.0, metavar="S", help="idle CPU window in seconds (default 30)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=16)
    parser.add_argument("--wrk-duration", type=int, default=10, metavar="S", help="seconds per wrk window; the abort is sent halfway")
    parser.add_argument("--paced-rate", type=int, default=2000, metavar="N", help="requests/s of the paced status load (default 2000)")
    parser.add_argument("--logs", metavar="DIR", help="keep the agents' logs in DIR")
    parser.add_argument("--inside", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside_main(args.inside)
        return
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.wrk_duration < 2:
        parser.error("--wrk-duration must be at least 2 (seconds)")
    try:
        outside_main(args)
    except BenchError as error:
        sys.exit(f"bench_agent.py failed: {error}")


if __name__ == "__main__":
    main()
