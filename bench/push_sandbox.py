"""A sandbox 1C with write limits and write faults in its own process (`onec-etl sandbox` has no write options).

Used by bench/push_throughput.py and the SIGKILL test: `python bench/push_sandbox.py --port P --max-items 500
--rate-limit 20 [--apply-then-drop 0.1]`; the other fault options reproduce issues 12 and 14 by hand (e.g.
`--error-503 0.05 --drop 0.05 --apply-then-drop 0.05 --rate-limit 5`). Serves on 127.0.0.1 only, until terminated.
"""

from __future__ import annotations

import argparse
from datetime import date

from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-items", type=int, default=500)
    parser.add_argument("--rate-limit", type=float)
    parser.add_argument("--max-connections", type=int)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--apply-then-drop", type=float, default=0.0)
    parser.add_argument("--apply-then-timeout", type=float, default=0.0)
    parser.add_argument("--partial-batch", type=float, default=0.0)
    parser.add_argument("--write-timeout-delay", type=float, default=35.0, help="seconds (apply-then-timeout)")
    parser.add_argument("--error-503", type=float, default=0.0, help="reads and writes")
    parser.add_argument("--drop", type=float, default=0.0, help="reads: the connection drops mid-answer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = SandboxData.generate(documents=0, start=date(2026, 2, 1), days=28)
    config = SandboxConfig(
        rate_limit=args.rate_limit,
        max_connections=args.max_connections,
        latency_s=args.latency,
        max_batch_items=args.max_items,
        faults=FaultConfig(
            error_503=args.error_503,
            drop=args.drop,
            apply_then_drop=args.apply_then_drop,
            apply_then_timeout=args.apply_then_timeout,
            partial_batch=args.partial_batch,
            write_timeout_delay_s=args.write_timeout_delay,
        ),
        seed=args.seed,
    )
    serve(SandboxEngine(data, config), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
