#!/usr/bin/env python3
"""A long-lived agent under a steady stream of runs: sudo scripts/soak.py [--runs N] [--keep-runs K] [--binary PATH] [--check]

Starts one `faultline agent` on loopback with a state directory of its own and `--keep-runs K`, then submits N short
runs one after another (each a 50 ms cpu-stress of one worker at 10%, nothing else), each followed on its event
stream to its end. Every --every runs it prints the agent's resident memory, the state directory's size on disk
(as du counts it, the journal's 4 MiB reserve included) and the submit -> end latency percentiles of those runs.
It ends with the figures the retention issue asks for:
  - memory after all runs against memory after the first --baseline runs (target: within 5 MB);
  - the state directory after all runs against the directory once retention had run for a while (the first row
    at or after 2x K runs):
    bounded by the retention, no growth beyond noise;
  - latency of the last --every runs against the first (no rise).
With --check it exits 1 when a target is missed (the short soak in `make test` runs this with 600 runs, K=100).

Nothing touches the network beyond loopback; the stress processes are the agent's own, bounded in time; the state
directory and the agent are removed at the end, also on failure.
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIO = """apiVersion: faultline/v1
kind: Scenario
metadata: {name: soak}
spec:
  maxDuration: 5s
  faults:
    - {name: burn, type: cpu-stress, duration: 50ms, workers: 1, load: 10%}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def allocated(path):
    """Bytes on disk under path, as du counts them (not following links)."""
    total = os.lstat(path).st_blocks * 512
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
            except FileNotFoundError:
                pass  # pruned while we walked
    return total


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Soak:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="flt-soak-")
        self.state = os.path.join(self.work, "state")
        self.token = "soak-" + os.urandom(16).hex()
        token_file = os.path.join(self.work, "token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(self.token)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.work, "agent.log"), "w")
        argv = [args.binary, "agent", "--listen", f"127.0.0.1:{self.port}", "--token-file", token_file, "--state-dir", self.state,
                "--keep-runs", str(args.keep_runs), "--log-level", "warning"]
        self.agent = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1).read()
                break
            except Exception:
                if self.agent.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the agent did not start: {open(self.log.name).read()[-2000:]}")
                time.sleep(0.05)

    def request(self, method, path, body=None, timeout=30):
        headers = {"Authorization": "Bearer " + self.token}
        if body is not None:
            headers["Content-Type"] = "application/yaml"
        return urllib.request.urlopen(urllib.request.Request(self.base + path, data=body, headers=headers, method=method), timeout=timeout)

    def one_run(self):
        """Submits the scenario and follows its events to the end; submit -> end in ms."""
        sent = time.monotonic()
        run = json.load(self.request("POST", "/v1/runs", SCENARIO.encode()))
        for raw in self.request("GET", f"/v1/runs/{run['id']}/events"):
            if raw.decode().strip() == "event: end":
                break
        return (time.monotonic() - sent) * 1000

    def run(self):
        a = self.args
        print(f"agent pid {self.agent.pid}, {a.runs} runs, --keep-runs {a.keep_runs}, binary {a.binary}", flush=True)
        print(f"{'runs':>6} {'RSS MiB':>8} {'state MB':>9} {'folders':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}", flush=True)
        rows, window, latencies, baseline_rss, settled_state, settled_at = [], [], [], None, None, None
        started = time.monotonic()
        for index in range(1, a.runs + 1):
            ms = self.one_run()
            window.append(ms)
            latencies.append(ms)
            if index == a.baseline:
                baseline_rss = rss_mib(self.agent.pid)
            if index % a.every == 0 or index == a.runs:
                rss, size = rss_mib(self.agent.pid), allocated(self.state)
                folders = len(os.listdir(os.path.join(self.state, "runs")))
                if settled_state is None and index >= 2 * a.keep_runs:
                    settled_state, settled_at = size, index
                row = {"runs": index, "rss_mib": rss, "state_bytes": size, "folders": folders,
                       "p50": percentile(window, 50), "p95": percentile(window, 95), "p99": percentile(window, 99), "latencies": window}
                rows.append(row)
                print(f"{index:>6} {rss:>8.1f} {size / 1e6:>9.2f} {folders:>8} {row['p50']:>7.1f} {row['p95']:>7.1f} {row['p99']:>7.1f}", flush=True)
                window = []
        elapsed = time.monotonic() - started
        final = rows[-1]
        first, last = rows[0], rows[-1]
        growth = final["rss_mib"] - (baseline_rss or rows[0]["rss_mib"])
        if settled_state is None:
            settled_state, settled_at = final["state_bytes"], a.runs
        print(f"\n{a.runs} runs in {elapsed:.0f} s ({a.runs / elapsed:.1f} runs/s)")
        print(f"memory: {baseline_rss or rows[0]['rss_mib']:.1f} MiB after {a.baseline} runs, {final['rss_mib']:.1f} MiB after {a.runs}: "
              f"{growth:+.1f} MiB (target within {a.max_growth_mib} MiB)")
        print(f"state directory: {settled_state / 1e6:.2f} MB after {settled_at} runs, {final['state_bytes'] / 1e6:.2f} MB after {a.runs} "
              f"({final['folders']} run folders; target: bounded by --keep-runs {a.keep_runs})")
        print(f"latency submit -> end: first {a.every} runs p50 {first['p50']:.1f} / p95 {first['p95']:.1f} / p99 {first['p99']:.1f} ms; "
              f"last {len(last['latencies'])} p50 {last['p50']:.1f} / p95 {last['p95']:.1f} / p99 {last['p99']:.1f} ms; "
              f"all p50 {percentile(latencies, 50):.1f} / p95 {percentile(latencies, 95):.1f} / p99 {percentile(latencies, 99):.1f} ms")
        listed = json.load(self.request("GET", "/v1/runs?limit=1000"))
        print(f"GET /v1/runs lists {len(listed['runs'])} runs")
        misses = []
        if growth > a.max_growth_mib:
            misses.append(f"memory grew {growth:.1f} MiB")
        if final["folders"] > a.keep_runs + 1:
            misses.append(f"{final['folders']} run folders kept, more than --keep-runs {a.keep_runs}")
        if final["state_bytes"] > settled_state * 1.15 + 512 * 1024:
            misses.append(f"the state directory grew from {settled_state / 1e6:.2f} to {final['state_bytes'] / 1e6:.2f} MB")
        if last["p50"] > first["p50"] * 1.5 + 10:
            misses.append(f"latency rose: p50 {first['p50']:.1f} -> {last['p50']:.1f} ms")
        if len(listed["runs"]) > a.keep_runs + 1:
            misses.append(f"the API lists {len(listed['runs'])} runs")
        if a.json:
            json.dump({"rows": [{k: v for k, v in r.items() if k != "latencies"} for r in rows], "baseline_rss_mib": baseline_rss,
                       "settled_state_bytes": settled_state, "misses": misses}, open(a.json, "w"), indent=1)
        for miss in misses:
            print(f"MISSED: {miss}")
        return 1 if misses and a.check else 0

    def close(self):
        if self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.agent.pid, signal.SIGKILL)
                self.agent.wait()
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--keep-runs", type=int, default=200)
    parser.add_argument("--every", type=int, default=1_000, help="print a row every N runs")
    parser.add_argument("--baseline", type=int, default=500, help="memory is compared with memory after this many runs")
    parser.add_argument("--max-growth-mib", type=float, default=5.0)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "faultline"),
                        help="the faultline to soak (default: the release build, `make release`)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("soak.py needs root (the agent's faults and guards)")
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"no faultline at {args.binary}: run `make release`, or pass --binary")
    soak = Soak(args)
    try:
        code = soak.run()
    finally:
        soak.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
