#!/usr/bin/env python3
"""The seeded chaos loop: real `tydfs` processes on loopback (a master and 4 datakeepers,
factor 3), clients putting, overwriting, getting and removing files of 0 B to 64 MiB, and a
scheduler driven by a printed seed that kill -9s, restarts and pauses (SIGSTOP) datakeepers,
cuts a datakeeper off the network for a while (each datakeeper runs as a user of its own, and
nftables drops every packet to or from its port and every packet its sockets send: nothing
reaches it and it reaches no one, the master included; needs root and `nft`, else said loudly
and left out), pauses the master (SIGSTOP),
kill -9s and restarts the master, and kill -9s clients mid-operation.

After the faults stop it checks the invariants:
  - every acknowledged file reads back byte-exact (a file whose last operation failed or was
    killed may hold its previous content or the new one, whole: never anything else);
  - a removed file is gone, and no path holds a file nobody put;
  - replication converges to the factor (fsck healthy) within a bound;
  - no server's memory went past its bound while it ran.
A failing run prints its seed; `scripts/chaos.py --seed N` replays the same schedule (the
faults and operations in the same order; their timing against the servers varies).

Usage: scripts/chaos.py [--seconds 60] [--seed N] [--bin PATH]   (exit 0 when every invariant held)
"""
import argparse, hashlib, json, os, random, shutil, signal, subprocess, sys, tempfile, threading, time

parser = argparse.ArgumentParser()
parser.add_argument("--seconds", type=float, default=60)
parser.add_argument("--seed", type=int, default=None)
parser.add_argument("--bin", default=os.environ.get("TYDFS_BIN", ".build/debug/tydfs"))
parser.add_argument("--converge-seconds", type=float, default=90)
parser.add_argument("--memory-mib", type=int, default=512, help="RSS bound for every server")
args = parser.parse_args()
seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
print(f"chaos: seed {seed} ({args.seconds:.0f} s of faults; replay with --seed {seed})", flush=True)
schedule = random.Random(seed)          # the faults
operations = random.Random(seed * 7 + 1)  # the clients' choices
binary = os.path.abspath(args.bin)
work = tempfile.mkdtemp(prefix="tydfs-chaos-")
port = 20000 + random.Random(seed).randrange(12000)  # below the ephemeral range (32768-60999)
master_url = f"http://127.0.0.1:{port}"
processes = {}
lock = threading.Lock()
stats = {"puts": 0, "overwrites": 0, "gets": 0, "removes": 0, "failed": 0, "bytes": 0,
         "kills": 0, "restarts": 0, "pauses": 0, "partitions": 0, "master kills": 0, "master pauses": 0, "client kills": 0}
# Partitions: one nftables table of this run's own, removed at the end.
nft_table = f"tydfs_chaos_{os.getpid()}"


def nft(*command):
    return subprocess.run(["nft", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def datakeeper_uid(name):
    """The user datakeeper NAME runs as when partitions are on, so nftables can tell its packets."""
    return 61000 + int(name[2:])


def make_partition_table():
    if shutil.which("nft") is None:
        return "`nft` is not installed (Debian: nftables)"
    os.chmod(work, 0o755)
    probe = subprocess.run([binary, "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           user=datakeeper_uid("dk1"), group=datakeeper_uid("dk1"), extra_groups=[])
    if probe.returncode != 0:
        return f"a datakeeper cannot run as a user of its own (needs root, and {binary} readable by all): {probe.stderr.strip()}"
    made = nft("add", "table", "inet", nft_table)
    if made.returncode != 0:
        return f"nft cannot make a table here (needs root): {made.stderr.strip()}"
    chain = nft("add", "chain", "inet", nft_table, "cut", "{ type filter hook output priority 0; policy accept; }")
    if chain.returncode != 0:
        nft("delete", "table", "inet", nft_table)
        return f"nft cannot make an output chain here: {chain.stderr.strip()}"
    return None
problems = []
peak_rss = {}


def log(message):
    print(f"chaos: {message}", flush=True)


def start(name):
    folder = f"{work}/{name}"
    if name == "master":
        command = [binary, "master", "--listen", f"127.0.0.1:{port}", "--data", folder, "--heartbeat-timeout", "3s",
                   "--repair-interval", "500ms", "--orphan-grace", "5s", "--deletion-grace", "2s"]
    else:
        secret = f"{work}/master/cluster.secret"
        if partitions:  # a user of its own, with its own copy of the secret
            uid = datakeeper_uid(name)
            os.makedirs(folder, exist_ok=True)
            os.chown(folder, uid, uid)
            secret = f"{work}/{name}.secret"
            if not os.path.exists(secret):
                shutil.copyfile(f"{work}/master/cluster.secret", secret)
                os.chown(secret, uid, uid)
                os.chmod(secret, 0o600)
        command = [binary, "datakeeper", "--master", master_url, "--listen", "127.0.0.1:0", "--data", folder, "--id", name,
                   "--heartbeat-interval", "300ms", "--secret-file", secret,
                   "--report-interval", "10s", "--scrub-interval", "5s", "--scrub-rate", "256MiB"]
    output = open(f"{work}/{name}.log", "ab")
    user = {"user": datakeeper_uid(name), "group": datakeeper_uid(name), "extra_groups": []} if partitions and name != "master" else {}
    processes[name] = subprocess.Popen(command, stdout=output, stderr=output, stdin=subprocess.DEVNULL, **user)


def stop(name, sig=signal.SIGKILL):
    process = processes.pop(name, None)
    if process is None:
        return
    os.kill(process.pid, signal.SIGCONT)
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def client(arguments, timeout=300, input_file=None):
    """Runs `tydfs ARGUMENTS`; returns (exit code, stdout bytes); -9 when killed by the scheduler."""
    environment = dict(os.environ, TYDFS_CONFIG=f"{work}/master/admin-client.conf", TYDFS_MASTER=master_url)
    process = subprocess.Popen([binary] + arguments, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL, env=environment)
    with lock:
        clients.add(process)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        problems.append(f"`tydfs {' '.join(arguments[:2])}` hung for {timeout} s")
    finally:
        with lock:
            clients.discard(process)
    return process.returncode, output


clients = set()


def content(version):
    """The bytes of a file version: its size and bytes follow from the version number alone."""
    rng = random.Random(version)
    size = rng.choice([0, 1, 4096, 65535, 65536, 300_000, 1_000_000, 5_000_000, rng.randrange(0, 64 << 20)])
    return rng.randbytes(size)


def digest(data):
    return hashlib.sha256(data).hexdigest()


# The model: for every path, the digests it may hold now (None = absent). An acknowledged
# operation narrows it to one; a failed or killed one allows the old and the new.
model = {}
next_version = [0]


def worker(number, deadline):
    rng = random.Random(operations.randrange(1 << 30))
    paths = [f"/chaos/w{number}/f{i}" for i in range(6)]
    local = f"{work}/w{number}.bin"
    while time.time() < deadline:
        path = rng.choice(paths)
        with lock:
            allowed = set(model.get(path, {None}))
            next_version[0] += 1
            version = seed * 100_000 + next_version[0]
        choice = rng.random()
        if choice < 0.45:  # put (a new path) or overwrite
            data = content(version)
            with open(local, "wb") as file:
                file.write(data)
            overwrite = None not in allowed or rng.random() < 0.5
            code, _ = client(["put", "-q", local, path] + (["--overwrite"] if overwrite else []))
            with lock:
                stats["overwrites" if overwrite else "puts"] += 1
                if code == 0:
                    stats["bytes"] += len(data)
                    model[path] = {digest(data)}
                else:
                    stats["failed"] += 1
                    model[path] = allowed | {digest(data)}
        elif choice < 0.6:  # rm
            code, _ = client(["rm", path])
            with lock:
                stats["removes"] += 1
                if code == 0:
                    model[path] = {None}
                elif None not in allowed:
                    stats["failed"] += 1
                    model[path] = allowed | {None}
        else:  # get, checked against the model at once
            code, output = client(["get", path, "-"])
            with lock:
                stats["gets"] += 1
                now = set(model.get(path, {None}))
            if code == 0 and digest(output) not in now:
                problems.append(f"get {path} during the run returned {len(output)} bytes that no put of it wrote")
            if code != 0:
                with lock:
                    stats["failed"] += 1


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return 0
    return 0


def watch_memory(deadline):
    while time.time() < deadline:
        for name, process in list(processes.items()):
            peak_rss[name] = max(peak_rss.get(name, 0), rss_mib(process.pid))
        time.sleep(0.5)


def datakeeper_port(name):
    for node in nodes():
        if node["id"] == name:
            return int(node["address"].rsplit(":", 1)[1])
    return None


def faults(deadline):
    datakeepers = ["dk1", "dk2", "dk3", "dk4"]
    kinds = ["kill", "kill", "pause", "pause", "master", "pause master", "client"] + (["partition", "partition"] if partitions else [])
    while time.time() < deadline:
        time.sleep(schedule.uniform(1.0, 4.0))
        action = schedule.choice(kinds)
        target = schedule.choice(datakeepers)
        if action == "kill" and target in processes:
            log(f"kill -9 {target}, restart in a moment")
            stop(target)
            stats["kills"] += 1
            time.sleep(schedule.uniform(0.5, 3.0))
            start(target)
            stats["restarts"] += 1
        elif action == "pause" and target in processes:
            seconds = schedule.uniform(1.0, 6.0)
            log(f"SIGSTOP {target} for {seconds:.1f} s")
            os.kill(processes[target].pid, signal.SIGSTOP)
            stats["pauses"] += 1
            time.sleep(seconds)
            if target in processes:
                os.kill(processes[target].pid, signal.SIGCONT)
        elif action == "partition" and target in processes:
            seconds = schedule.uniform(2.0, 8.0)
            port_number = datakeeper_port(target)
            if port_number is None:
                continue
            log(f"cut {target} (port {port_number}) off for {seconds:.1f} s")
            added = [nft("add", "rule", "inet", nft_table, "cut", *match, "drop")
                     for match in [["tcp", "dport", str(port_number)], ["tcp", "sport", str(port_number)],
                                   ["meta", "skuid", str(datakeeper_uid(target))]]]
            if any(rule.returncode != 0 for rule in added):
                problems.append(f"could not cut {target} off: {'; '.join(r.stderr.strip() for r in added if r.returncode)}")
            stats["partitions"] += 1
            time.sleep(seconds)
            nft("flush", "chain", "inet", nft_table, "cut")
        elif action == "pause master" and "master" in processes:
            seconds = schedule.uniform(1.0, 4.0)
            log(f"SIGSTOP master for {seconds:.1f} s")
            os.kill(processes["master"].pid, signal.SIGSTOP)
            stats["master pauses"] += 1
            time.sleep(seconds)
            if "master" in processes:
                os.kill(processes["master"].pid, signal.SIGCONT)
        elif action == "master":
            log("kill -9 master, restart in a moment")
            stop("master")
            stats["master kills"] += 1
            time.sleep(schedule.uniform(0.2, 2.0))
            start("master")
        elif action == "client":
            with lock:
                victims = sorted(clients, key=lambda p: p.pid)
            if victims:
                victim = victims[schedule.randrange(len(victims))]
                log(f"kill -9 a client ({' '.join(victim.args[1:3])})")
                try:
                    victim.kill()
                    stats["client kills"] += 1
                except OSError:
                    pass


def wait_for(what, seconds, condition):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if condition():
                return True
        except Exception:
            pass
        time.sleep(0.5)
    problems.append(f"not within {seconds:.0f} s: {what}")
    return False


def nodes():
    code, output = client(["nodes", "--json"], timeout=30)
    return json.loads(output)["nodes"] if code == 0 else []


exit_code = 1
partitions_missing = make_partition_table()
partitions = partitions_missing is None
if not partitions:
    log(f"NO PARTITIONS in this run: {partitions_missing}")
try:
    start("master")
    wait_for("the master writes its admin config", 20, lambda: os.path.exists(f"{work}/master/admin-client.conf"))
    for name in ["dk1", "dk2", "dk3", "dk4"]:
        start(name)
    wait_for("4 datakeepers alive", 30, lambda: sum(n["alive"] for n in nodes()) == 4)
    deadline = time.time() + args.seconds
    threads = [threading.Thread(target=worker, args=(i, deadline)) for i in range(3)]
    threads += [threading.Thread(target=faults, args=(deadline,)), threading.Thread(target=watch_memory, args=(deadline + 600,), daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads[:-1]:
        thread.join()
    log("faults stopped; every server runs again, checking the invariants")
    for name in ["master", "dk1", "dk2", "dk3", "dk4"]:
        if name in processes:
            os.kill(processes[name].pid, signal.SIGCONT)
        else:
            start(name)
    if "master" not in processes:
        start("master")
    started = time.time()
    wait_for("4 datakeepers alive again", 30, lambda: sum(n["alive"] for n in nodes()) == 4)
    converged = wait_for("replication back to the factor (fsck healthy, nothing under-replicated)", args.converge_seconds,
                         lambda: (lambda r: r[0] == 0 and json.loads(r[1])["underReplicatedChunks"] == 0)(client(["fsck", "/", "--json"], timeout=30)))
    convergence = time.time() - started
    lost = 0
    listed = set()
    code, output = client(["ls", "/chaos", "--json"], timeout=30)
    folders = [e["path"] for e in json.loads(output)["entries"]] if code == 0 else []
    for folder in folders:
        code, output = client(["ls", folder, "--json"], timeout=30)
        listed |= {e["path"] for e in json.loads(output)["entries"]} if code == 0 else set()
    for path, allowed in sorted(model.items()):
        code, output = client(["get", path, "-"], timeout=300)
        found = digest(output) if code == 0 else None
        if found not in allowed:
            lost += 1
            problems.append(f"{path}: holds {'nothing' if found is None else f'{len(output)} bytes no put wrote whole'}; "
                            f"expected {'absent' if allowed == {None} else 'one of its acknowledged versions'}")
    for path in listed - set(model):
        problems.append(f"{path} exists, but no client ever put it")
    for name, peak in sorted(peak_rss.items()):
        if peak > args.memory_mib:
            problems.append(f"{name} reached {peak} MiB of memory (bound {args.memory_mib} MiB)")
    print()
    print(f"{'seed':<34}{seed}")
    print(f"{'seconds of faults':<34}{args.seconds:.0f}")
    print(f"{'operations (put/overwrite/get/rm)':<34}{stats['puts']}/{stats['overwrites']}/{stats['gets']}/{stats['removes']}"
          f" ({stats['failed']} failed or cut off by a fault)")
    print(f"{'bytes acknowledged':<34}{stats['bytes']}")
    print(f"{'faults injected':<34}{stats['kills']} datakeeper kills, {stats['pauses']} pauses, "
          f"{stats['partitions'] if partitions else 'no (see above)'} partitions, "
          f"{stats['master kills']} master kills, {stats['master pauses']} master pauses, {stats['client kills']} client kills")
    print(f"{'replication converged':<34}{'yes' if converged else 'NO'} ({convergence:.1f} s after the faults)")
    print(f"{'peak RSS MiB':<34}{', '.join(f'{k} {v}' for k, v in sorted(peak_rss.items()))}")
    print(f"{'files checked':<34}{len(model)}")
    print(f"{'files lost or wrong':<34}{lost}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    exit_code = 0 if not problems else 1
    if problems:
        print(f"chaos: FAILED with seed {seed}; logs kept in {work}")
finally:
    if partitions:
        nft("delete", "table", "inet", nft_table)
    for name in list(processes):
        stop(name, signal.SIGTERM)
    with lock:
        for process in list(clients):
            process.kill()
    if exit_code == 0:
        shutil.rmtree(work, ignore_errors=True)
sys.exit(exit_code)
