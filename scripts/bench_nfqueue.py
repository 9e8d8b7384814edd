#!/usr/bin/env python3
"""Benchmark of the userspace NFQUEUE delayer, rerunnable: sudo scripts/bench_nfqueue.py [--seconds S] [--runs N] [--exe PATH] [--json FILE]

Measures `faultline delayer` (the engine of latency and packet-loss where the kernel has no sch_netem)
on a path of three namespaces joined by veth pairs: sender a (10.213.40.1) -> router r (10.213.40.2,
10.213.41.2, forwarding) -> receiver b (10.213.41.1). The delayer runs with the same mangle POSTROUTING
rule a fault adds (NFQUEUE --queue-bypass) either in r on its egress towards b ("forwarded": the packets
of other hosts, as on a gateway or for a pod's veth), or in a on its own egress ("local": the packets of
the sender's own sockets), at 0 ms and 50 ms delay; and without a delayer as the baseline:
  1. UDP packets per second: iperf3 sends 64-byte datagrams at fixed rates (20k, 50k, 100k, 150k/s)
     for S seconds; received packets per second and loss as iperf3's server counts them, the delayer's
     CPU (utime+stime of its process over the window, % of one core) and its own statistics (packets
     passed undelayed because its queue was full, how late its verdicts were);
  2. TCP throughput: one iperf3 stream for S seconds;
  3. added latency: 200 pings at 10 ms intervals, alone and during 20,000 datagrams/s of UDP load;
     median RTT minus the baseline median, against the delay asked.
Packets made on the host are copied, the original dropped at once and the copy sent again through a
raw socket after the delay (holding the original would hold its socket's send buffer, and TCP's small
queue limit would throttle the sender to a few packets per delay); forwarded packets are held in the
kernel until their verdict. The rules are the plan's: the marked copies pass, the rest is queued.
Each measure runs N times (--runs, default 3); the table shows medians (min-max). The delayer is
restarted for every measure so its statistics are its own. Nothing is applied in the root namespace;
everything created is removed at the end, also on failure. Needs root, iperf3 and ping.
Without --exe it uses the release build as it ships (`make release`, in .build: a no-op when it is current).
"""
import argparse, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUEUE = 64999
MARK = "0xfa17fa17"  # the mark of the copies the delayer sends again (Planner.delayerMark)
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "20000,50000,100000,150000").split(",")]
TICKS = os.sysconf("SC_CLK_TCK")


def sh(*argv, check=True, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    m = statistics.median(values)
    return f"{m:,.1f} ({min(values):,.1f}-{max(values):,.1f})" if len(values) > 1 else f"{m:,.1f}"


class Bench:
    def __init__(self, args):
        self.args = args
        tag = f"flt-nfqb-{os.getpid()}"
        self.a, self.r, self.b = tag + "a", tag + "r", tag + "b"
        self.made = []
        self.server = None
        self.work = tempfile.mkdtemp(prefix="flt-bench-nfq-")
        self.exe = args.exe

    def build(self):
        if self.exe:
            return
        # The release build as it ships (`make release`, in .build; a no-op when current).
        flags = ["-c", "release", "--static-swift-stdlib"]
        head = sh("git", "log", "-1", "--format=%h %s", cwd=ROOT, check=False).stdout.strip()
        print(f"building faultline (release) at {head[:60]} ...", flush=True)
        result = sh("swift", "build", *flags, "--product", "faultline", cwd=ROOT, check=False)
        if result.returncode != 0:
            sys.exit(f"swift build failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
        built = os.path.join(sh("swift", "build", *flags, "--show-bin-path", cwd=ROOT).stdout.strip(), "faultline")
        self.exe = os.path.join(self.work, "faultline")
        shutil.copy2(built, self.exe)

    def setup(self):
        for ns in (self.a, self.r, self.b):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", self.r)
        sh("ip", "-n", self.b, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1", "netns", self.r)
        for ns, device, address in ((self.a, "eth0", "10.213.40.1/24"), (self.r, "eth0", "10.213.40.2/24"),
                                    (self.r, "eth1", "10.213.41.2/24"), (self.b, "eth0", "10.213.41.1/24")):
            sh("ip", "-n", ns, "addr", "add", address, "dev", device)
            sh("ip", "-n", ns, "link", "set", device, "up")
        sh("ip", "-n", self.a, "route", "add", "default", "via", "10.213.40.2")
        sh("ip", "-n", self.b, "route", "add", "default", "via", "10.213.41.2")
        sh("ip", "netns", "exec", self.r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        self.server = subprocess.Popen(["ip", "netns", "exec", self.b, "iperf3", "-s", "-B", "10.213.41.1"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if sh("ip", "netns", "exec", self.a, "iperf3", "-c", "10.213.41.1", "-n", "1K", "-J", check=False).returncode == 0:
                break
            time.sleep(0.05)

    def cleanup(self):
        if self.server:
            self.server.kill()
            self.server.wait()
        for ns in self.made:
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    def in_a(self, *argv, **kwargs):
        return sh("ip", "netns", "exec", self.a, *argv, **kwargs)

    def start_delayer(self, delay_ms, place):
        """The delayer bound to QUEUE in namespace `place`, and the rule a latency fault adds on its egress towards b."""
        ns, device = (self.a, "eth0") if place == "local" else (self.r, "eth1")
        log = open(os.path.join(self.work, "delayer.log"), "w+")
        process = subprocess.Popen(["ip", "netns", "exec", ns, self.exe, "delayer", "--queue", str(QUEUE),
                                    "--limit", "10000", "--delay", f"{delay_ms}ms", "--interface", device, "--ignore-parent"],
                                   stdout=log, stderr=subprocess.STDOUT)
        for _ in range(500):
            log.seek(0)
            if "ready" in log.read():
                break
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the delayer exited: {log.read()}")
            time.sleep(0.01)
        sh("ip", "netns", "exec", ns, "iptables", "-w", "5", "-t", "mangle", "-I", "POSTROUTING", "1", "-o", device,
           "-j", "NFQUEUE", "--queue-num", str(QUEUE), "--queue-bypass")
        sh("ip", "netns", "exec", ns, "iptables", "-w", "5", "-t", "mangle", "-I", "POSTROUTING", "1", "-o", device,
           "-m", "mark", "--mark", MARK, "-j", "ACCEPT")
        return process, log, ns, device

    def stop_delayer(self, delayer):
        process, log, ns, device = delayer
        sh("ip", "netns", "exec", ns, "iptables", "-w", "5", "-t", "mangle", "-D", "POSTROUTING", "-o", device,
           "-j", "NFQUEUE", "--queue-num", str(QUEUE), "--queue-bypass", check=False)
        sh("ip", "netns", "exec", ns, "iptables", "-w", "5", "-t", "mangle", "-D", "POSTROUTING", "-o", device,
           "-m", "mark", "--mark", MARK, "-j", "ACCEPT", check=False)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        log.seek(0)
        text = log.read()
        log.close()
        match = re.search(r"stats: (.*)", text)
        if not match or "warning" in text or "error" in text:
            print(f"  the delayer said: {text.strip()[:1500]} (exit {process.returncode})", flush=True)
        return dict(item.split("=") for item in match.group(1).split()) if match else {}

    def with_delayer(self, delay_ms, place, body):
        """Runs body(pid) with a fresh delayer (or none when delay_ms is None); returns (result, cpu %, stats)."""
        if delay_ms is None:
            return body(None), None, {}
        delayer = self.start_delayer(delay_ms, place)
        try:
            pid = int(sh("pgrep", "-f", f"delayer --queue {QUEUE}").stdout.split()[0])
            before, start = cpu_seconds(pid), time.monotonic()
            result = body(pid)
            cpu = (cpu_seconds(pid) - before) / (time.monotonic() - start) * 100
        finally:
            stats = self.stop_delayer(delayer)
        return result, cpu, stats

    def udp(self, rate, seconds):
        bits = rate * 64 * 8
        out = self.in_a("iperf3", "-c", "10.213.41.1", "-u", "-l", "64", "-b", str(bits), "-t", str(seconds), "-J", check=False)
        data = json.loads(out.stdout)
        total = data["end"]["sum"]
        received = total["packets"] - total["lost_packets"]
        return {"sent_pps": total["packets"] / total["seconds"], "received_pps": received / total["seconds"],
                "loss_pct": total["lost_percent"]}

    def tcp(self, seconds):
        out = self.in_a("iperf3", "-c", "10.213.41.1", "-t", str(seconds), "-J", check=False)
        data = json.loads(out.stdout)
        return data["end"]["sum_received"]["bits_per_second"] / 1e9

    def ping(self, count=200, load=None):
        """Median RTT in ms of `count` pings at 10 ms intervals, optionally under `load` datagrams/s of UDP."""
        loader = None
        if load:
            loader = subprocess.Popen(["ip", "netns", "exec", self.a, "iperf3", "-c", "10.213.41.1", "-u", "-l", "64",
                                       "-b", str(load * 64 * 8), "-t", str(int(count * 0.01) + 2)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        out = self.in_a("ping", "-n", "-c", str(count), "-i", "0.01", "10.213.41.1", check=False)
        if loader:
            loader.wait()
        times = [float(t) for t in re.findall(r"time=([\d.]+) ms", out.stdout)]
        return statistics.median(times) if times else None

    def run(self):
        args = self.args
        results = {"machine": {"cores": os.cpu_count(), "kernel": os.uname().release}, "seconds": args.seconds, "runs": args.runs,
                   "udp": {}, "tcp": {}, "latency": {}}
        print(f"machine: {os.cpu_count()} cores, kernel {os.uname().release}; {args.runs} run(s) of {args.seconds} s each", flush=True)
        configs = [("none", None, None), ("forwarded 0ms", 0, "forwarded"), ("forwarded 50ms", 50, "forwarded"),
                   ("local 0ms", 0, "local"), ("local 50ms", 50, "local")]
        if os.environ.get("BENCH_CONFIGS"):
            configs = [c for c in configs if c[0] in os.environ["BENCH_CONFIGS"].split(",")]
        baseline_rtt = []
        for _ in range(args.runs):
            baseline_rtt.append(self.ping())
        base = statistics.median(baseline_rtt)
        results["latency"]["baseline_rtt_ms"] = baseline_rtt
        for name, delay, place in configs:
            for rate in RATES:
                rows = []
                for _ in range(args.runs):
                    result, cpu, stats = self.with_delayer(delay, place, lambda _pid: self.udp(rate, args.seconds))
                    result["delayer_cpu_pct"] = cpu
                    result["passed_full"] = int(stats.get("passed-full", 0))
                    result["late_median_us"] = int(stats["late-median-us"]) if "late-median-us" in stats else None
                    rows.append(result)
                results["udp"].setdefault(name, {})[rate] = rows
                print(f"udp {name:>14} {rate:>7,}/s: received {med([r['received_pps'] for r in rows])}/s, loss "
                      f"{med([r['loss_pct'] for r in rows])} %, delayer CPU {med([r['delayer_cpu_pct'] for r in rows])} %, "
                      f"passed undelayed {med([r['passed_full'] for r in rows])}, verdicts late (median) {med([r['late_median_us'] for r in rows])} us",
                      flush=True)
            rows = [self.with_delayer(delay, place, lambda _pid: self.tcp(args.seconds)) for _ in range(args.runs)]
            results["tcp"][name] = [{"gbit_s": r[0], "delayer_cpu_pct": r[1]} for r in rows]
            print(f"tcp {name:>14}: {med([r[0] * 1000 for r in rows])} Mbit/s, delayer CPU {med([r[1] for r in rows])} %", flush=True)
            if delay is not None:
                for load in (None, 20_000):
                    rtts = [self.with_delayer(delay, place, lambda _pid: self.ping(load=load))[0] for _ in range(args.runs)]
                    added = [r - base for r in rtts if r is not None]
                    results["latency"][f"{name} {'loaded' if load else 'idle'}"] = {"rtt_ms": rtts, "added_ms": added}
                    print(f"latency {name:>14} {'under 20,000 datagrams/s' if load else 'idle':>24}: median RTT {med(rtts)} ms, "
                          f"added {med(added)} ms (asked {delay} ms; baseline RTT {base:.3f} ms)", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
        return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each load window (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each measure (default 3)")
    parser.add_argument("--exe", help="a faultline binary to use instead of building one")
    parser.add_argument("--json", help="write every measurement to this file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, iptables)")
    for tool in ("iperf3", "ping", "ip", "iptables", "pgrep"):
        if not shutil.which(tool):
            sys.exit(f"needs {tool} (apt-get install -y iperf3 iputils-ping iproute2 iptables procps)")
    bench = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.build()
        bench.setup()
        bench.run()
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
