#!/usr/bin/env python3
"""Runs the benchmark's wrk rounds against a running bench stack and reports them.

Called by bench/run with the stack's facts in the environment. For each scenario: two rounds
(medians reported), CPU milliseconds per request for music-api, PostgreSQL and nginx read from
/proc before and after each round, RSS per worker, and the ceilings measured in the same run.
With BENCH_CLUSTER_TLS_PORT set (bench/run --cluster): S1 over TLS through the single-node stack
and through the loopback cluster (BENCH_CLUSTER_DIR, BENCH_CLUSTER_KEYS), rounds interleaved.
"""

import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

E = os.environ
HTTP = "http://127.0.0.1:%s" % E["BENCH_HTTP_PORT"]
HTTPS = "https://127.0.0.1:%s" % E["BENCH_TLS_PORT"]
DURATION = int(E.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(E.get("BENCH_CONNECTIONS", "32"))
LUA = os.path.join(os.path.dirname(__file__), "wrk-keys.lua")
TICK = os.sysconf("SC_CLK_TCK")

SCENARIOS = [
    ("S1", "/v1/music/{org}/tracks?limit=20"),
    ("S2", "/v1/music/{org}/tracks?mode=creation&limit=50&offset=200"),
    ("S3", "/v1/music/{org}/tracks?collection_id={collection}&limit=50"),
    ("S4", "/v1/music/{org}/tracks?limit=50&offset=5000"),
]


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


def tree(pid):
    return [pid] + children(pid)


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def groups():
    with open(E["BENCH_PG_PID_FILE"]) as f:
        postmaster = int(f.readline())
    with open(E["BENCH_API_PID_FILE"]) as f:
        api = int(f.read())
    with open(E["BENCH_NGINX_PID_FILE"]) as f:
        nginx = int(f.read())
    return {"api": tree(api), "pg": tree(postmaster), "nginx": tree(nginx)}, api


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, path, connections=CONNECTIONS, duration=DURATION, keys=None, threads=2, byte_range=""):
    env = dict(os.environ, BENCH_PATH=path, BENCH_KEYS=keys or E["BENCH_KEYS"], BENCH_RANGE=byte_range)
    cmd = ["wrk", "-t%d" % min(threads, connections), "-c%d" % connections, "-d%ds" % duration,
           "--latency", "-s", LUA, url]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"requests": reqs, "rps": rps, "p50_ms": p50, "p99_ms": p99,
            "non_2xx": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1) if errors else ""}


def measured_round(url, path, procs=None, **kw):
    if procs is None:
        procs, _ = groups()
    before = {k: cpu_ticks(v) for k, v in procs.items()}
    r = wrk(url, path, **kw)
    after = {k: cpu_ticks(v) for k, v in procs.items()}
    for k in procs:
        r["%s_cpu_ms" % k] = (after[k] - before[k]) * 1000.0 / TICK / max(r["requests"], 1)
    return r


def median_of(rounds):
    keys = rounds[0].keys()
    return {k: (statistics.median(r[k] for r in rounds) if isinstance(rounds[0][k], (int, float))
                else rounds[0][k]) for k in keys}


def worker_rss():
    _, api = groups()
    return [rss_kb(p) for p in children(api)]


def soak(total_seconds):
    """Full load for total_seconds in 30 s slices cycling S1-S4; worker RSS sampled after each."""
    slices = max(1, total_seconds // 30)
    samples = [worker_rss()]
    requests = 0
    failed = 0
    for i in range(slices):
        r = wrk(HTTP, SCENARIOS[i % len(SCENARIOS)][1], duration=30)
        requests += r["requests"]
        failed += r["non_2xx"]
        samples.append(worker_rss())
        print("soak %3d s: %s rps=%.0f rss_kb=%s" % ((i + 1) * 30, SCENARIOS[i % len(SCENARIOS)][0], r["rps"],
                                                  samples[-1]), flush=True)
    # Flatness after the first slice (the first requests grow each worker to its working size).
    warm = samples[1]
    change = max(abs(end - start) * 100.0 / start for start, end in zip(warm, samples[-1]) if start)
    peak = max(max(s) for s in samples)
    print("soak requests=%d non_2xx=%d rss_kb_after_first_slice=%s rss_kb_end=%s max_change_pct=%.1f peak_kb=%d"
          % (requests, failed, warm, samples[-1], change, peak))
    with open(E["BENCH_RESULT_JSON"], "w") as f:
        json.dump({"soak_seconds": slices * 30, "requests": requests, "non_2xx": failed, "rss_kb_samples": samples,
                   "max_change_pct_after_first_slice": change, "peak_kb": peak}, f, indent=2)
    return 1 if failed else 0


def pid_in(path):
    try:
        with open(path) as f:
            return int(f.readline())
    except (FileNotFoundError, ValueError):
        return None


def cluster_groups():
    """The cluster's processes (scripts/lib/cluster.sh's layout), one group per kind and per node."""
    d = E["BENCH_CLUSTER_DIR"]
    out = {"api": [], "pg": [], "nginx": [], "ha": []}
    for f in sorted(glob.glob(os.path.join(d, "api", "*", "music-api.pid"))):
        out["api"] += tree(pid_in(f)) if pid_in(f) else []
    for f in sorted(glob.glob(os.path.join(d, "pg", "*", "data", "postmaster.pid"))):
        node = os.path.basename(os.path.dirname(os.path.dirname(f)))
        out["pg%s" % node] = tree(pid_in(f)) if pid_in(f) else []
        out["pg"] += out["pg%s" % node]
    nginx = pid_in(os.path.join(d, "nginx", "nginx.pid"))
    out["nginx"] = tree(nginx) if nginx else []
    # Patroni and etcd themselves (not their children: a postmaster is counted under pg).
    for f in glob.glob(os.path.join(d, "pg", "*", "patroni.pid")) + glob.glob(os.path.join(d, "etcd", "*", "etcd.pid")):
        out["ha"] += [pid_in(f)] if pid_in(f) else []
    return out


def cluster_roles():
    """pgN -> role, from Patroni's REST API (the nodes listen on 127.0.1.N)."""
    import urllib.request
    for n in (1, 2, 3):
        try:
            with urllib.request.urlopen("http://127.0.1.%d:%s/cluster" % (n, E.get("BENCH_CLUSTER_REST_PORT", "8008")),
                                        timeout=2) as r:
                return {m["name"]: m.get("role") for m in json.load(r).get("members", [])}
        except OSError:
            continue
    return {}


def cluster_vs_single():
    """S1 over TLS through the single-node nginx and through the cluster's, interleaved."""
    path = SCENARIOS[0][1]
    sides = [
        ("single", HTTPS, E["BENCH_KEYS"], lambda: groups()[0]),
        ("cluster", "https://127.0.0.1:%s" % E["BENCH_CLUSTER_TLS_PORT"], E["BENCH_CLUSTER_KEYS"], cluster_groups),
    ]
    print("warm-up…", flush=True)
    for _, url, keys, _ in sides:
        wrk(url, path, duration=max(2, DURATION // 3), keys=keys)
    rounds = {name: [] for name, _, _, _ in sides}
    for i in range(2):  # single, cluster, single, cluster: drift over the run falls on both
        for name, url, keys, procs in sides:
            r = measured_round(url, path, procs=procs(), keys=keys)
            rounds[name].append(r)
            print("  round %d %-7s rps=%.0f p99_ms=%.2f non_2xx=%d" % (i + 1, name, r["rps"], r["p99_ms"], r["non_2xx"]),
                  flush=True)
    results = {"mode": "cluster", "scenario": "S1 over TLS", "path": path, "duration_s": DURATION,
               "connections": CONNECTIONS, "rounds": rounds}
    for name, _, _, _ in sides:
        m = median_of(rounds[name])
        results[name] = m
        extra = ""
        if name == "cluster":
            roles = cluster_roles()
            nodes = sorted(k for k in m if re.match(r"pg\d+_cpu_ms$", k))
            extra = " ha_cpu_ms=%.3f pg_cpu_ms_by_node=%s" % (m["ha_cpu_ms"], ",".join(
                "%s(%s):%.3f" % (k[:-7], roles.get(k[:-7], "?"), m[k]) for k in nodes))
            m["roles"] = roles
        print("S1 %s rps=%.0f p50_ms=%.2f p99_ms=%.2f api_cpu_ms=%.3f pg_cpu_ms=%.3f nginx_cpu_ms=%.3f non_2xx=%d%s"
              % (name, m["rps"], m["p50_ms"], m["p99_ms"], m["api_cpu_ms"], m["pg_cpu_ms"], m["nginx_cpu_ms"],
                 m["non_2xx"], extra), flush=True)
    s, c = results["single"], results["cluster"]
    results["ratio_rps"] = c["rps"] / s["rps"]
    results["ratio_p99"] = c["p99_ms"] / s["p99_ms"]
    results["cpu_ms_per_request"] = {
        name: sum(results[name][k] for k in ("api_cpu_ms", "pg_cpu_ms", "nginx_cpu_ms", "ha_cpu_ms")
                  if k in results[name]) for name in ("single", "cluster")}
    note = ("both run on the same %d cores (with wrk), so the ratio is the cluster's overhead (extra hops: "
            "nginx to the app hosts over TCP, the app hosts to a replica over TCP; replica reads; three app hosts' "
            "worker pools sharing the cores), not its capacity: two cores cannot show scaling"
            % os.cpu_count())
    results["note"] = note
    results["topology"] = E.get("BENCH_TOPOLOGY", "")
    print("S1 single rps=%.0f p99_ms=%.2f" % (s["rps"], s["p99_ms"]))
    print("S1 cluster rps=%.0f p99_ms=%.2f" % (c["rps"], c["p99_ms"]))
    print("cluster/single ratio=%.2f p99_ratio=%.2f cpu_ms_per_request single=%.3f cluster=%.3f"
          % (results["ratio_rps"], results["ratio_p99"], results["cpu_ms_per_request"]["single"],
             results["cpu_ms_per_request"]["cluster"]))
    if results["topology"]:
        print("topology: %s" % results["topology"])
    print("note: %s" % note)
    with open(E["BENCH_RESULT_JSON"], "w") as f:
        json.dump(results, f, indent=2)
    failed = sum(r["non_2xx"] for side in rounds.values() for r in side)
    if failed:
        print("warning: %d non-2xx responses during the rounds" % failed, file=sys.stderr)
        return 1
    return 0


def signed_media_path(file_name):
    """A fresh signed URL from get-track (the master, or the stem `clip`), as a path on the
    plain-HTTP listener."""
    org, _, key, _, track = next(line.rstrip("\n").split("\t") for line in open(E["BENCH_TRACK_KEYS"])
                                 if not line.startswith("#"))
    req = urllib.request.Request("%s/v1/music/%s/tracks/%s" % (HTTP, org, track), headers={"X-API-Key": key})
    with urllib.request.urlopen(req, timeout=10) as r:
        track = json.load(r)
    url = track["playback_url"] if file_name == "master.ogg" else track["stem_urls"]["clip"]
    parts = urllib.parse.urlsplit(url)
    return parts.path + "?" + parts.query


def playback(results, ceiling):
    """S5, get-track (a signed URL minted per request) beside S1; then the same audio file through
    the signed /v1/media/ location (njs HMAC check) and as plain static, rounds alternated."""
    rounds = [measured_round(HTTP, "/v1/music/{org}/tracks/{track}", keys=E["BENCH_TRACK_KEYS"]) for _ in range(2)]
    m = median_of(rounds)
    m["ratio"] = m["rps"] / ceiling
    m["ratio_to_S1"] = m["rps"] / results["scenarios"]["S1"]["rps"]
    results["scenarios"]["S5"] = m
    print("S5 get-track rps=%.0f ratio=%.2f vs_S1=%.2f p50_ms=%.2f p99_ms=%.2f api_cpu_ms=%.3f pg_cpu_ms=%.3f "
          "non_2xx=%d" % (m["rps"], m["ratio"], m["ratio_to_S1"], m["p50_ms"], m["p99_ms"], m["api_cpu_ms"],
                          m["pg_cpu_ms"], m["non_2xx"]), flush=True)
    # A short clip whole (per-request cost shows most), a 3-minute track whole, and a player's
    # 64 KiB range of it: static and signed rounds alternated for each.
    results["media"] = {}
    for label, file_name, byte_range in (("clip_40k", "clip.ogg", ""), ("track_3min", "master.ogg", ""),
                                         ("track_range_64k", "master.ogg", "bytes=0-65535")):
        signed = signed_media_path(file_name)
        static = "/ceiling/media/" + signed.split("?")[0][len("/v1/media/"):]
        signed_rounds, static_rounds = [], []
        for _ in range(2):
            static_rounds.append(wrk(HTTP, static, byte_range=byte_range))
            signed_rounds.append(wrk(HTTP, signed, byte_range=byte_range))
        media = {"signed": median_of(signed_rounds), "static": median_of(static_rounds)}
        media["ratio"] = media["signed"]["rps"] / media["static"]["rps"]
        results["media"][label] = media
        print("media %-15s signed rps=%.0f static rps=%.0f ratio=%.2f p99_ms signed=%.2f static=%.2f non_2xx=%d"
              % (label, media["signed"]["rps"], media["static"]["rps"], media["ratio"], media["signed"]["p99_ms"],
                 media["static"]["p99_ms"], media["signed"]["non_2xx"] + media["static"]["non_2xx"]), flush=True)


def main():
    if E.get("BENCH_CLUSTER_TLS_PORT"):
        return cluster_vs_single()
    if E.get("BENCH_SOAK_SECONDS"):
        return soak(int(E["BENCH_SOAK_SECONDS"]))
    results = {"duration_s": DURATION, "connections": CONNECTIONS, "scenarios": {}, "ceilings": {}}
    rss_start = worker_rss()
    print("warm-up…", flush=True)
    for _, path in SCENARIOS:
        wrk(HTTP, path, duration=max(2, DURATION // 3))

    for name, path in [("static", "/ceiling/static"), ("canned_fastcgi", "/ceiling/canned")]:
        rounds = [wrk(HTTP, path) for _ in range(2)]
        results["ceilings"][name] = median_of(rounds)
        print("ceiling %-15s rps=%.0f p99_ms=%.2f" % (name, results["ceilings"][name]["rps"],
                                                     results["ceilings"][name]["p99_ms"]), flush=True)
    ceiling = results["ceilings"]["canned_fastcgi"]["rps"]

    for name, path in SCENARIOS:
        rounds = [measured_round(HTTP, path) for _ in range(2)]
        m = median_of(rounds)
        m["path"] = path
        m["ratio"] = m["rps"] / ceiling
        results["scenarios"][name] = m
        print("%s rps=%.0f ratio=%.2f p50_ms=%.2f p99_ms=%.2f api_cpu_ms=%.3f pg_cpu_ms=%.3f nginx_cpu_ms=%.3f "
              "non_2xx=%d" % (name, m["rps"], m["ratio"], m["p50_ms"], m["p99_ms"], m["api_cpu_ms"],
                              m["pg_cpu_ms"], m["nginx_cpu_ms"], m["non_2xx"]), flush=True)

    if E.get("BENCH_TRACK_KEYS"):
        playback(results, ceiling)

    tls = measured_round(HTTPS, SCENARIOS[0][1])
    results["tls_S1"] = tls
    print("S1 over TLS rps=%.0f p99_ms=%.2f" % (tls["rps"], tls["p99_ms"]), flush=True)

    growth = {}
    for line in open(E["BENCH_GROWTH_KEYS"]):
        if line.startswith("#") or not line.strip():
            continue
        saves, keys_file = line.split()
        for label, path in [("first_page", "/v1/music/{org}/tracks?limit=20"),
                            ("offset_10000", "/v1/music/{org}/tracks?limit=20&offset=10000")]:
            r = wrk(HTTP, path, connections=1, threads=1, duration=max(2, DURATION // 3), keys=keys_file)
            growth["%s_%s" % (saves, label)] = {"p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "rps": r["rps"]}
            print("growth saves=%s %s p50_ms=%.3f p99_ms=%.3f" % (saves, label, r["p50_ms"], r["p99_ms"]),
                  flush=True)
    results["growth"] = growth
    rss_end = worker_rss()
    results["rss_kb_per_worker"] = {"start": rss_start, "end": rss_end}
    print("rss_kb per worker: start=%s end=%s" % (rss_start, rss_end), flush=True)

    with open(E["BENCH_RESULT_JSON"], "w") as f:
        json.dump(results, f, indent=2)
    for name, _ in SCENARIOS:
        m = results["scenarios"][name]
        print("%s rps=%.0f ceiling_rps=%.0f ratio=%.2f p99_ms=%.2f pg_cpu_ms=%.3f"
              % (name, m["rps"], ceiling, m["ratio"], m["p99_ms"], m["pg_cpu_ms"]))
    for label, media in results.get("media", {}).items():
        print("media %s signed/static ratio=%.2f" % (label, media["ratio"]))
    failed = sum(m["non_2xx"] for m in results["scenarios"].values())
    failed += sum(m[side]["non_2xx"] for m in results.get("media", {}).values() for side in ("signed", "static"))
    if failed:
        print("warning: %d non-2xx responses during the scenarios" % failed, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
