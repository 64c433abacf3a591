"""The Python participant of the cross-language hammer (redis/cross/run.sh).

    python hammer.py --config PATH --policy NAME --key KEY --attempts N --start-at UNIX_MS

Loads the TOML config through ratewall's public config API (``Config.from_file`` +
``Config.open``, with command and connect timeouts of 2 s, so that a loaded test machine
measures Redis rather than the fail mode; as the C participant), takes policy NAME on the
configured Redis, sleeps until the wall clock reaches
UNIX_MS, makes N checks of cost 1 on KEY one after another, and prints one JSON line:

    {"binding":"python","policy":NAME,"allowed":A,"denied":D,"fallback":F,"first_ms":T0,"last_ms":T1}

F counts decisions not made by Redis (``Decision.source`` is a fail mode). On any error: a
message on stderr and exit status 1. Run it with the Python where ratewall is installed
(``py/.venv/bin/python`` after ``bash py/ci.sh``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hammer.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="TOML config file")
    parser.add_argument("--policy", required=True, help="policy name in the config")
    parser.add_argument("--key", required=True, help="client key to hammer")
    parser.add_argument("--attempts", required=True, type=_positive, help="checks to make")
    parser.add_argument("--start-at", required=True, type=int, help="wall-clock start, unix ms")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    try:
        args = _parse(argv)
    except SystemExit as e:  # argparse already printed the usage error on stderr
        return 0 if e.code == 0 else 1
    try:
        import ratewall

        config = ratewall.Config.from_file(args.config)
        if not ratewall.storage.is_redis_uri(config.storage):
            raise ValueError(f"the config's storage is {config.storage!r}, not a Redis URL")
        limiters = config.open(command_timeout=2.0, connect_timeout=2.0)
        limiter = limiters.get(args.policy)
        if limiter is None:
            raise KeyError(f"no policy named {args.policy!r} in {args.config} (policies: {limiters.names})")
        # Sleep until the start instant (the last stretch in short steps, for a tight start).
        while True:
            remaining_ms = args.start_at - time.time() * 1000
            if remaining_ms <= 0:
                break
            time.sleep(min(remaining_ms / 1000, 0.05) if remaining_ms > 2 else remaining_ms / 2000)
        allowed = denied = fallback = 0
        check, key = limiter.check, args.key
        first_ms = int(time.time() * 1000)
        for _ in range(args.attempts):
            d = check(key, 1)
            if d.allowed:
                allowed += 1
            else:
                denied += 1
            if d.source != "redis":
                fallback += 1
        last_ms = int(time.time() * 1000)
    except Exception as e:  # noqa: BLE001 - the interface: any error is a message and status 1
        print(f"hammer.py: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    line = {
        "binding": "python",
        "policy": args.policy,
        "allowed": allowed,
        "denied": denied,
        "fallback": fallback,
        "first_ms": first_ms,
        "last_ms": last_ms,
    }
    print(json.dumps(line, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
