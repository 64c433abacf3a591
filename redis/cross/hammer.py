#!/usr/bin/env python3
"""Cross-language hammer: C, Python and Node processes share one quota through one Redis.

For each policy of the shared config, the three participants (one process per language, each
with its own connection, the binding's public API and the shared TOML config) are started
together, wait for one wall-clock instant, then hammer ONE client key with many more checks than
the quota allows. Together they must admit exactly the quota: Redis decides every request
atomically, so no interleaving of the three processes may admit one request more or one less.

Window algorithms run two rounds, the second after the first window has passed on the same key:
each window admits exactly its quota again (and a multi-limit policy admits exactly what its
longer limit has left). Token bucket and sliding window counter run one round over a long period,
where refill and weighting cannot add a permit during the run.

Checks, per round:
- the admissions of all processes add up to exactly the expected number;
- every decision was made by Redis (no fail-open/closed/local fallback);
- the three processes overlapped in time (their [first, last] check intervals intersect), so the
  count was made under real concurrency; and the round fitted in one period.

Usage: hammer.py --redis-url URL --c CMD --python CMD --node CMD [--attempts N]
(each CMD is a participant command line; see DESIGN/README for the participant interface).
Exit status 0 when every round of every policy holds.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid

# name -> (TOML body of the policy, rounds: [(expected admissions, pause before the round in s)])
POLICIES = {
    "tb": ('limits = "150/hour"\nalgorithm = "token-bucket"', [150]),
    "swc": ('limits = "150/hour"\nalgorithm = "sliding-window-counter"', [150]),
    "fw": ('limits = "150/2s"\nalgorithm = "fixed-window"', [150, 150]),
    "log": ('limits = "150/2s"\nalgorithm = "sliding-log"', [150, 150]),
    # Round 1 is held by the 2 s limit, round 2 by what the hourly limit has left.
    "multi": ('limits = "150/2s; 200/hour"\nalgorithm = "fixed-window"', [150, 50]),
}
SHORT_PERIOD_MS = 2000
START_DELAY_MS = 1500  # lets every interpreter start before the common instant


def write_config(directory, url, prefix):
    lines = [
        "[defaults]",
        f'storage = "{url}"',
        'fail_mode = "fail-closed"',
        f'key_prefix = "{prefix}"',
        "",
    ]
    for name, (body, _) in POLICIES.items():
        lines += [f"[policies.{name}]", body, ""]
    path = os.path.join(directory, "hammer.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def run_round(participants, config, policy, key, attempts):
    start_at = int(time.time() * 1000) + START_DELAY_MS
    procs = {}
    for lang, cmd in participants.items():
        argv = shlex.split(cmd) + [
            "--config", config, "--policy", policy, "--key", key,
            "--attempts", str(attempts), "--start-at", str(start_at),
        ]
        procs[lang] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for lang, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise SystemExit(f"hammer: the {lang} participant did not finish in 120 s")
        if proc.returncode != 0:
            raise SystemExit(f"hammer: the {lang} participant failed (exit {proc.returncode}):\n{err}")
        lines = [line for line in out.splitlines() if line.strip()]
        if len(lines) != 1:
            raise SystemExit(f"hammer: the {lang} participant printed {len(lines)} lines, not one JSON line:\n{out}")
        result = json.loads(lines[0])
        for field in ("allowed", "denied", "fallback", "first_ms", "last_ms"):
            if field not in result:
                raise SystemExit(f"hammer: the {lang} participant's line lacks {field!r}: {lines[0]}")
        if result["allowed"] + result["denied"] != attempts:
            raise SystemExit(f"hammer: the {lang} participant made {result['allowed'] + result['denied']} decisions, not {attempts}")
        results[lang] = result
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--c", required=True, help="the C participant's command")
    parser.add_argument("--python", required=True, help="the Python participant's command")
    parser.add_argument("--node", required=True, help="the Node participant's command")
    parser.add_argument("--attempts", type=int, default=600, help="checks per process and round")
    args = parser.parse_args()
    participants = {"c": args.c, "python": args.python, "node": args.node}

    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(tmp, args.redis_url, f"cross-{uuid.uuid4().hex[:8]}")
        print(f"hammer: one Redis ({args.redis_url}), one key per policy, "
              f"{len(participants)} processes x {args.attempts} checks per round")
        for policy, (_, rounds) in POLICIES.items():
            key = f"client:{uuid.uuid4().hex[:8]}"
            previous_end = None
            for index, expected in enumerate(rounds, 1):
                if previous_end is not None:
                    # The next round starts after the short window of the previous one has passed.
                    wait = previous_end + SHORT_PERIOD_MS + 300 - START_DELAY_MS - time.time() * 1000
                    if wait > 0:
                        time.sleep(wait / 1000)
                results = run_round(participants, config, policy, key, args.attempts)
                allowed = sum(r["allowed"] for r in results.values())
                fallback = sum(r["fallback"] for r in results.values())
                first = min(r["first_ms"] for r in results.values())
                last = max(r["last_ms"] for r in results.values())
                overlap = max(r["first_ms"] for r in results.values()) <= min(r["last_ms"] for r in results.values())
                detail = ", ".join(f"{lang} {r['allowed']}" for lang, r in results.items())
                verdict = "ok"
                problems = []
                if allowed != expected:
                    problems.append(f"admitted {allowed}, expected exactly {expected}")
                if fallback:
                    problems.append(f"{fallback} decisions were not made by Redis")
                if not overlap:
                    problems.append("the processes did not run at the same time")
                if len(rounds) > 1 and last - first >= SHORT_PERIOD_MS:
                    problems.append(f"the round took {last - first} ms, longer than the {SHORT_PERIOD_MS} ms window")
                if problems:
                    verdict = "FAILED: " + "; ".join(problems)
                    failures.append(f"{policy} round {index}: {verdict}")
                print(f"  {policy:6} round {index}: admitted {allowed:4} of {expected} ({detail}) "
                      f"in {last - first} ms: {verdict}")
                previous_end = last
    if failures:
        print("hammer: " + str(len(failures)) + " failed", file=sys.stderr)
        for failure in failures:
            print("  " + failure, file=sys.stderr)
        return 1
    print("hammer: every round admitted exactly its quota across C, Python and Node")
    return 0


if __name__ == "__main__":
    sys.exit(main())
