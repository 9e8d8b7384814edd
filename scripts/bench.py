#!/usr/bin/env python3
"""Faultline benchmarks, rerunnable: sudo scripts/bench.py [--runs N] [--debug | --binary PATH] [--skip-ctk] [--only PARTS] [--image]

Measures, on this machine, with medians over N runs, and ends with one table of the figures against their targets:
  - start-up: `faultline --version` wall time and peak RSS;
  - the agent (on loopback in a scratch namespace): idle RSS, and submit -> injected for a drop (the POST sent to
    the run's inject event);
  - the image (--image): the size of the runtime image scripts/build-image makes from this binary;
  - inject and revert time of each fault type that works here (from the run's JSON log:
    the fault's scheduled time to the moment it is active / reverted);
  - abort reaction: the abort decision to every fault reverted;
  - guard recovery: SIGKILL of the runner to the fault gone;
  - peak RSS of the runner;
  - the same experiment (an HTTP probe plus a process pause with its undo) in Faultline and in
    Chaos Toolkit (PyPI chaostoolkit, installed into a venv under .build-bench/): wall-time
    overhead beyond the experiment's pauses, and peak RSS, as ratios.
Network faults run inside two scratch namespaces (flt-bench-*), never in the root namespace.
Everything it creates is removed at the end, also on failure.
"""
import argparse, datetime, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
A, B = f"flt-bench-{os.getpid()}a", f"flt-bench-{os.getpid()}b"
ADDR_B = "10.213.7.2"
SERVER = r'''
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
'''

# Runs inside namespace A beside the agent: waits until it answers, reads its idle RSS, then submits the scenario N
# times (one after another), each time from the POST being sent to the run's inject event, followed to its end.
AGENT_CLIENT = r"""
import json, sys, time, urllib.request, datetime
base, token, path, runs, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
auth = {"Authorization": "Bearer " + token}
def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field): return int(line.split()[1]) / 1024
deadline = time.monotonic() + 30
while True:
    try:
        urllib.request.urlopen(base + "/healthz", timeout=1).read(); break
    except Exception:
        if time.monotonic() > deadline: raise
        time.sleep(0.05)
time.sleep(2)
idle, anon = status("VmRSS"), status("RssAnon")
body = open(path, "rb").read()
latencies = []
for _ in range(runs):
    sent = time.time()
    request = urllib.request.Request(base + "/v1/runs", data=body, headers=dict(auth, **{"Content-Type": "application/yaml"}), method="POST")
    run = json.load(urllib.request.urlopen(request, timeout=10))
    stream = urllib.request.urlopen(urllib.request.Request(base + f"/v1/runs/{run['id']}/events", headers=auth), timeout=30)
    injected = None
    for raw in stream:
        line = raw.decode().strip()
        if line.startswith("data:"):
            event = json.loads(line[5:])
            if event.get("event") == "inject" and injected is None:
                injected = datetime.datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()
        if line == "event: end": break
    if injected is None: sys.exit(f"run {run['id']} had no inject event")
    latencies.append((injected - sent) * 1000)
print(json.dumps({"idle_rss_mib": idle, "idle_anon_mib": anon, "latencies_ms": latencies, "rss_after_mib": status("VmRSS")}))
"""

def sh(*argv, check=True, **kw):
    return subprocess.run(list(argv), check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

class Bench:
    def __init__(self, args):
        self.args = args
        self.children = []
        self.mounts = []
        self.results = {}  # the summary table's figures, by key
        if args.binary:
            # A build already made (a release build for the image, or an older build to compare with): no second build.
            self.exe = os.path.abspath(args.binary)
            print(f"using {self.exe}", flush=True)
        else:
            # The release build as it ships (`make release`: the Dockerfile's and `make install`'s command, the Swift
            # runtime linked in); when it is current, swift build only checks it.
            config = ["-c", "debug"] if args.debug else ["-c", "release", "--static-swift-stdlib"]
            print(f"building faultline ({config[1]}; a no-op when the build is current) ...", flush=True)
            sh("swift", "build", *config, "--product", "faultline", cwd=ROOT)
            self.exe = os.path.join(sh("swift", "build", *config, "--show-bin-path", cwd=ROOT).stdout.strip(), "faultline")
        self.work = tempfile.mkdtemp(prefix="flt-bench-")  # after the build: a failed build leaves nothing behind

    # -- setup and teardown -------------------------------------------------------------
    def setup_network(self):
        for ns in (A, B):
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0")
        sh("ip", "-n", A, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", B)
        for ns, addr in ((A, "10.213.7.1"), (B, ADDR_B)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        script = os.path.join(self.work, "server.py")
        open(script, "w").write(SERVER)
        self.spawn(["ip", "netns", "exec", B, sys.executable, script, "0.0.0.0", "8080"])
        self.spawn([sys.executable, script, "127.0.0.1", "18080"])
        time.sleep(0.5)

    def spawn(self, argv):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.children.append(p)
        return p

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                try: os.kill(p.pid, signal.SIGCONT)
                except OSError: pass
                p.kill(); p.wait()
        for mount in self.mounts:
            sh("umount", mount, check=False)
        for ns in (A, B):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    # -- running faultline --------------------------------------------------------------
    def scenario(self, name, faults, steady="", max_duration="5s"):
        name = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        while "--" in name:
            name = name.replace("--", "-")
        path = os.path.join(self.work, name + ".yaml")
        with open(path, "w") as f:
            f.write(f"apiVersion: faultline/v1\nkind: Scenario\nmetadata: {{name: {name}}}\nspec:\n"
                    f"  maxDuration: {max_duration}\n{steady}  faults:\n{faults}\n")
        return path

    def run(self, path, netns=A, timed=False):
        argv = ([] if netns is None else ["ip", "netns", "exec", netns]) + ([ "/usr/bin/time", "-f", "RSS %M"] if timed else []) + \
            [self.exe, "run", path, "--yes", "--log-format", "json", "--state-dir", os.path.join(self.work, "state")]
        start = time.monotonic()
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - start
        events, rss = [], None
        for line in result.stderr.splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
            elif line.startswith("RSS "):
                rss = int(line.split()[1]) / 1024
        return result.returncode, events, wall, rss

    @staticmethod
    def ts(event):
        return datetime.datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()

    def first(self, events, kind, fault=None):
        for e in events:
            if e.get("event") == kind and (fault is None or e.get("fault") == fault):
                return self.ts(e)
        return None

    # -- the measurements -----------------------------------------------------------------
    def inject_revert(self, label, fault_yaml, before=None, netns=A, steady=""):
        injects, reverts = [], []
        for _ in range(self.args.runs):
            if before: before()
            path = self.scenario("bench-" + label, fault_yaml, steady=steady)
            code, events, _, _ = self.run(path, netns=netns)
            method, inject = self.first(events, "method"), self.first(events, "inject", "f")
            revert = self.first(events, "revert", "f")
            if code != 0 or method is None or inject is None:
                print(f"  {label}: run failed (exit {code}): {[e['msg'] for e in events][-3:]}")
                return None
            injects.append((inject - method - 0.2) * 1000)
            if revert is not None:
                reverts.append((revert - method - 0.7) * 1000)
        row = (label, statistics.median(injects), statistics.median(reverts) if reverts else None)
        self.results["inject " + label] = row[1]
        if row[2] is not None: self.results["revert " + label] = row[2]
        print(f"  {label:<28} inject {row[1]:7.1f} ms   revert {('%7.1f ms' % row[2]) if row[2] is not None else '     —   '}", flush=True)
        return row

    def sleeper(self):
        program = os.path.join(self.work, "flt-sl-bench")
        if not os.path.exists(program):
            shutil.copy("/bin/sleep", program)
        return self.spawn([program, "600"])

    # Traffic for the network faults to act on (a run whose fault acted on nothing is inconclusive, exit 5).
    TRAFFIC = (f"  steadyState:\n    probes:\n      - name: b\n        interval: 20ms\n"
               f"        tcp: {{address: \"{ADDR_B}:8080\", timeout: 100ms}}\n")

    def drops(self):
        window = "start: 200ms, duration: 500ms"
        steady = self.TRAFFIC
        return [
            self.inject_revert("drop", f"    - {{name: f, type: drop, {window}, to: {{hosts: [{ADDR_B}], ports: [8080], protocol: tcp}}}}", steady=steady),
            self.inject_revert("drop 30% per connection", f"    - {{name: f, type: drop, {window}, probability: 30%, to: {{ports: [8080], protocol: tcp}}}}", steady=steady),
            self.inject_revert("latency (nfqueue engine)", f"    - {{name: f, type: latency, {window}, interface: eth0, delay: 50ms, engine: nfqueue}}", steady=steady),
        ]

    def faults(self):
        print(f"\ninject / revert, median of {self.args.runs} runs (scheduled time to active / to reverted):")
        window = "start: 200ms, duration: 500ms"
        rows = self.drops() + [
            self.inject_revert("bandwidth", f"    - {{name: f, type: bandwidth, {window}, interface: eth0, rate: 8mbit}}", steady=self.TRAFFIC),
        ]
        probe = sh("ip", "netns", "exec", A, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", check=False)
        if probe.returncode == 0:
            sh("ip", "netns", "exec", A, "tc", "qdisc", "del", "dev", "lo", "root")
            rows.append(self.inject_revert("latency (netem)", f"    - {{name: f, type: latency, {window}, interface: eth0, delay: 50ms}}", steady=self.TRAFFIC))
        else:
            print(f"  latency, packet-loss, corrupt, duplicate, reorder: skipped, no sch_netem here ({probe.stderr.strip()})")
        holder = {}
        def start_sleeper(): holder["p"] = self.sleeper()
        rows.append(self.inject_revert("kill-process", f"    - {{name: f, type: kill-process, {window}, match: {{name: flt-sl-bench}}}}", before=start_sleeper, netns=None))
        rows.append(self.inject_revert("pause-process", f"    - {{name: f, type: pause-process, {window}, match: {{name: flt-sl-bench}}}}", before=start_sleeper, netns=None))
        image, mount = os.path.join(self.work, "disk.img"), os.path.join(self.work, "disk")
        os.mkdir(mount)
        sh("truncate", "-s", "3G", image); sh("mkfs.ext4", "-q", "-F", image); sh("mount", "-o", "loop", image, mount)
        self.mounts.append(mount)
        rows.append(self.inject_revert("disk-fill 1GiB (ext4)", f"    - {{name: f, type: disk-fill, {window}, path: {mount}, size: 1GiB}}", netns=None))
        rows.append(self.inject_revert("cpu-stress", f"    - {{name: f, type: cpu-stress, {window}, workers: 1}}", netns=None))
        rows.append(self.inject_revert("memory-stress 256MiB", f"    - {{name: f, type: memory-stress, {window}, size: 256MiB}}", netns=None))
        return [r for r in rows if r]

    def abort_reaction(self):
        steady = ("  steadyState:\n    probes:\n      - name: web\n        interval: 100ms\n"
                  f"        http: {{url: \"http://{ADDR_B}:8080/\", timeout: 150ms}}\n    abortWhen: {{consecutiveFailures: 1}}\n")
        faults = (f"    - {{name: f, type: drop, start: 300ms, to: {{hosts: [{ADDR_B}], ports: [8080], protocol: tcp}}}}\n"
                  f"    - {{name: g, type: bandwidth, start: 300ms, interface: eth0, rate: 100mbit}}\n"
                  f"    - {{name: h, type: cpu-stress, start: 300ms, workers: 1, load: 10%}}")
        times = []
        for _ in range(self.args.runs):
            path = self.scenario("bench-abort", faults, steady, max_duration="10s")
            code, events, _, _ = self.run(path)
            abort = self.first(events, "abort")
            reverts = [self.ts(e) for e in events if e.get("event") == "revert"]
            if code != 1 or abort is None or len(reverts) != 3:
                print(f"  abort run failed (exit {code})"); return None
            times.append((max(reverts) - abort) * 1000)
        value = statistics.median(times)
        self.results["abort"] = value
        print(f"\nabort reaction (abort decision to 3 faults reverted), median of {self.args.runs}: {value:.1f} ms")
        return value

    def guard_recovery(self):
        times = []
        for _ in range(self.args.runs):
            path = self.scenario("bench-guard", f"    - {{name: f, type: drop, to: {{ports: [9999], protocol: tcp}}}}", max_duration="30s")
            argv = ["ip", "netns", "exec", A, self.exe, "run", path, "--yes", "--state-dir", os.path.join(self.work, "state")]
            runner = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while "FAULTLINE" not in sh("ip", "netns", "exec", A, "iptables", "-S").stdout:
                time.sleep(0.005)
            runner.kill(); killed = time.monotonic(); runner.wait()
            while "FAULTLINE" in sh("ip", "netns", "exec", A, "iptables", "-S").stdout:
                time.sleep(0.002)
            times.append((time.monotonic() - killed) * 1000)
        value = statistics.median(times)
        self.results["guard"] = value
        print(f"guard recovery after SIGKILL of the runner, median of {self.args.runs}: {value:.1f} ms")
        return value

    def rss(self):
        steady = ("  steadyState:\n    probes:\n      - name: web\n        interval: 100ms\n"
                  f"        http: {{url: \"http://{ADDR_B}:8080/\"}}\n")
        path = self.scenario("bench-rss", f"    - {{name: f, type: drop, duration: 2s, to: {{ports: [9999], protocol: tcp}}}}", steady)
        values = [self.run(path, timed=True)[3] for _ in range(self.args.runs)]
        value = statistics.median(v for v in values if v)
        self.results["rss probe run"] = value
        print(f"runner peak RSS (HTTP probe every 100ms, one drop fault, 2s), median: {value:.1f} MiB")
        return value

    def startup(self):
        """`faultline --version`: wall time (without /usr/bin/time in the way) and peak RSS; the stripped size."""
        runs = max(self.args.runs * 5, 50)
        walls, peaks = [], []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([self.exe, "--version"], stdout=subprocess.DEVNULL, check=True)
            walls.append((time.perf_counter() - start) * 1000)
        for _ in range(runs):
            result = sh("/usr/bin/time", "-f", "RSS %M", self.exe, "--version")
            peaks.append(int(result.stderr.split()[-1]) / 1024)
        stripped = os.path.join(self.work, "faultline-stripped")
        sh("strip", "-o", stripped, self.exe)
        size = os.path.getsize(stripped) / 1e6
        os.remove(stripped)
        self.results["version wall"] = statistics.median(walls)
        self.results["version rss"] = statistics.median(peaks)
        self.results["binary size"] = size
        print(f"\nstart-up, median of {runs}: faultline --version {statistics.median(walls):.1f} ms, peak RSS "
              f"{statistics.median(peaks):.1f} MiB; binary {size:.0f} MB stripped ({os.path.getsize(self.exe) / 1e6:.0f} MB as built)")

    def agent(self):
        """An agent on loopback in namespace A: its RSS when idle, then submit -> injected for a drop, run by run."""
        port, token = 17000 + os.getpid() % 1000, "bench-" + os.urandom(8).hex()
        state = os.path.join(self.work, "agent-state")
        env = dict(os.environ, FAULTLINE_TOKEN=token)
        agent = subprocess.Popen(["ip", "netns", "exec", A, self.exe, "agent", "--listen", f"127.0.0.1:{port}", "--state-dir", state],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.children.append(agent)  # `ip netns exec` execs the agent: this PID is the agent's
        client = os.path.join(self.work, "agent-client.py")
        open(client, "w").write(AGENT_CLIENT)
        scenario = self.scenario("bench-agent", "    - {name: f, type: drop, duration: 300ms, to: {ports: [9999], protocol: tcp}}")
        try:
            out = sh("ip", "netns", "exec", A, sys.executable, client, f"http://127.0.0.1:{port}", token, scenario, str(self.args.runs),
                     str(agent.pid)).stdout
        finally:
            agent.terminate(); agent.wait()
        result = json.loads(out)
        self.results["agent idle rss"] = result["idle_rss_mib"]
        self.results["agent submit to injected"] = statistics.median(result["latencies_ms"])
        self.results["agent rss after runs"] = result["rss_after_mib"]
        print(f"\nagent (loopback, namespace {A}): idle RSS {result['idle_rss_mib']:.1f} MiB "
              f"({result['idle_anon_mib']:.1f} MiB of it anonymous, the rest the binary's code mapped from the page cache); "
              f"submit -> injected (drop), median of {self.args.runs}: {statistics.median(result['latencies_ms']):.1f} ms; "
              f"RSS after the runs {result['rss_after_mib']:.1f} MiB")

    def image(self):
        """The runtime image scripts/build-image makes from this binary: its size and what is in it; removed after."""
        tag = f"localhost/faultline-bench:{os.getpid()}"
        result = subprocess.run([os.path.join(ROOT, "scripts", "build-image"), "--binary", self.exe, "--tag", tag],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        if result.returncode != 0:
            print(f"\nimage: scripts/build-image failed (exit {result.returncode}): {result.stdout.strip()[-400:]}")
            return
        try:
            size = int(json.loads(sh("buildah", "inspect", "--type", "image", tag).stdout).get("Size") or 0) / 1e6
            if not size:
                size = float(sh("buildah", "images", "--format", "{{.Size}}", tag).stdout.split()[0])
            self.results["image size"] = size
            print(f"\nimage {tag}: {size:.0f} MB ({result.stdout.strip().splitlines()[-1]})")
        finally:
            sh("buildah", "rmi", tag, check=False)

    def summary(self):
        """One table: each figure, Chaos Toolkit's where it has one, the ratio, the target and whether it is met."""
        r = self.results
        rows = []
        def add(label, value, unit, target=None, ctk=None, ratio_target=None):
            if value is None: return
            ratio = value / ctk if ctk else None
            goal, met = "", ""
            if ratio_target is not None and ratio is not None:
                goal, met = f"<= {ratio_target}x", "yes" if ratio <= ratio_target else "no"
            elif target is not None:
                goal, met = f"<= {target} {unit}", "yes" if value <= target else "no"
            rows.append((label, f"{value:.1f} {unit}", f"{ctk:.1f} {unit}" if ctk else "", f"{ratio:.2f}x" if ratio else "", goal, met))
        ctk = r.get("ctk")
        if ctk:
            fw, cw, fr, cr, _ = ctk
            add("overhead beyond the pause (probe + pause-process)", fw * 1000, "ms", ctk=cw * 1000, ratio_target=0.25)
            add("runner peak RSS, same experiment", fr, "MiB", ctk=cr, ratio_target=0.6)
        add("faultline --version", r.get("version wall"), "ms", target=10)
        add("faultline --version peak RSS", r.get("version rss"), "MiB")
        add("binary, stripped", r.get("binary size"), "MB")
        add("image", r.get("image size"), "MB", target=60)
        add("agent idle RSS", r.get("agent idle rss"), "MiB", target=20)
        add("agent submit -> injected (drop)", r.get("agent submit to injected"), "ms", target=60)
        add("drop in place after its time", r.get("inject drop"), "ms", target=20)
        add("30% drop in place after its time", r.get("inject drop 30% per connection"), "ms", target=25)
        add("drop reverted after its end", r.get("revert drop"), "ms")
        add("runner peak RSS, HTTP probe + drop, 2 s", r.get("rss probe run"), "MiB")
        add("abort decision -> 3 faults reverted", r.get("abort"), "ms")
        add("runner SIGKILLed -> guard reverted", r.get("guard"), "ms")
        if not rows: return
        header = ("measure", "faultline", "chaos toolkit", "ratio", "target", "met")
        widths = [max(len(str(x[i])) for x in rows + [header]) for i in range(len(header))]
        line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
        print(f"\nsummary ({self.exe}; medians of {self.args.runs} runs unless said; {ctk[4] if ctk else 'Chaos Toolkit not run'}):")
        print(line(header)); print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in rows: print(line(row))

    def versus_chaostoolkit(self):
        venv = os.path.join(ROOT, ".build-bench", "venv")
        chaos = os.path.join(venv, "bin", "chaos")
        if not os.path.exists(chaos):
            print("\ninstalling chaostoolkit into .build-bench/venv ...", flush=True)
            sh(sys.executable, "-m", "venv", venv)
            sh(os.path.join(venv, "bin", "pip"), "install", "-q", "chaostoolkit")
        version = sh(chaos, "--version").stdout.strip()
        pause = 2.0
        faultline_walls, faultline_rss, ctk_walls, ctk_rss = [], [], [], []
        for _ in range(self.args.runs):
            target = self.sleeper()
            steady = "  steadyState:\n    probes:\n      - name: web\n        interval: 1s\n        http: {url: \"http://127.0.0.1:18080/\"}\n"
            path = self.scenario("bench-vs-ctk", f"    - {{name: f, type: pause-process, duration: {int(pause)}s, match: {{pid: {target.pid}}}}}", steady, max_duration=f"{int(pause)}s")
            start = time.monotonic()
            result = subprocess.run(["/usr/bin/time", "-f", "RSS %M", self.exe, "run", path, "--yes", "--state-dir", os.path.join(self.work, "state")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            faultline_walls.append(time.monotonic() - start - pause)
            faultline_rss.append(int([l for l in result.stderr.splitlines() if l.startswith("RSS ")][-1].split()[1]) / 1024)
            experiment = {
                "version": "1.0.0", "title": "pause and resume", "description": "bench",
                "steady-state-hypothesis": {"title": "web answers", "probes": [{
                    "type": "probe", "name": "web", "tolerance": 200,
                    "provider": {"type": "http", "url": "http://127.0.0.1:18080/", "timeout": 2}}]},
                "method": [{"type": "action", "name": "pause", "provider": {"type": "process", "path": "kill", "arguments": f"-STOP {target.pid}"},
                            "pauses": {"after": pause}}],
                "rollbacks": [{"type": "action", "name": "resume", "provider": {"type": "process", "path": "kill", "arguments": f"-CONT {target.pid}"}}],
            }
            exp_path = os.path.join(self.work, "experiment.json")
            json.dump(experiment, open(exp_path, "w"))
            start = time.monotonic()
            result = subprocess.run(["/usr/bin/time", "-f", "RSS %M", chaos, "--log-file", os.path.join(self.work, "chaostoolkit.log"), "run",
                                     "--journal-path", os.path.join(self.work, "journal.json"), "--rollback-strategy", "always", exp_path],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.work)
            ctk_walls.append(time.monotonic() - start - pause)
            ctk_rss.append(int([l for l in result.stderr.splitlines() if l.startswith("RSS ")][-1].split()[1]) / 1024)
            target.kill(); target.wait()
        fw, cw = statistics.median(faultline_walls), statistics.median(ctk_walls)
        fr, cr = statistics.median(faultline_rss), statistics.median(ctk_rss)
        self.results["ctk"] = (fw, cw, fr, cr, version)
        print(f"\nsame experiment (HTTP probe + pause-process {pause:.0f}s with undo), median of {self.args.runs}; {version}:")
        print(f"  overhead beyond the pause: faultline {fw*1000:.0f} ms, chaostoolkit {cw*1000:.0f} ms  -> ratio {fw/cw:.2f}")
        print(f"  peak RSS:                  faultline {fr:.1f} MiB, chaostoolkit {cr:.1f} MiB  -> ratio {fr/cr:.2f}")
        return fw, cw, fr, cr

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--debug", action="store_true", help="benchmark the debug build (default: release)")
    parser.add_argument("--skip-ctk", action="store_true", help="do not install or run Chaos Toolkit")
    parser.add_argument("--binary", help="benchmark this faultline binary instead of building one")
    parser.add_argument("--only", default="startup,agent,faults,abort,guard,rss,ctk",
                        help="comma-separated parts to run: startup, agent, faults (drop is part of it), drop, abort, guard, rss, ctk "
                             "(default: all but drop)")
    parser.add_argument("--image", action="store_true", help="also build the runtime image from the binary (scripts/build-image) and report its size")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.py needs root (namespaces, iptables, tc, mounts)")
    bench = Bench(args)
    try:
        bench.setup_network()
        print(f"machine: {os.cpu_count()} cores, kernel {os.uname().release}")
        parts = set(args.only.split(","))
        if "startup" in parts: bench.startup()
        if "agent" in parts: bench.agent()
        if args.image: bench.image()
        if "faults" in parts:
            bench.faults()
        elif "drop" in parts:
            print(f"\ninject / revert of the iptables faults, median of {args.runs} runs (scheduled time to active / to reverted):")
            bench.drops()
        if "abort" in parts: bench.abort_reaction()
        if "guard" in parts: bench.guard_recovery()
        if "rss" in parts: bench.rss()
        if "ctk" in parts and not args.skip_ctk:
            bench.versus_chaostoolkit()
        bench.summary()
    finally:
        bench.cleanup()

if __name__ == "__main__":
    main()
