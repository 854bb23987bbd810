"""`python -m benchmarks [name ...] [options]`: run the benchmarks (all by default).

Run through `make bench`, which starts (or points at) the database and exports its URLs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks import (
    amazon_orders,
    amazon_tokens,
    repricing_catalog,
    repricing_engine,
    repricing_latency,
    rls_cost,
)

BENCHMARKS = {
    "rls_cost": rls_cost,
    "amazon_tokens": amazon_tokens,
    "amazon_orders": amazon_orders,
    "repricing_engine": repricing_engine,
    "repricing_catalog": repricing_catalog,
    "repricing_latency": repricing_latency,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all: {', '.join(BENCHMARKS)})")
    for module in BENCHMARKS.values():
        module.add_arguments(parser)
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    started = time.perf_counter()
    names = args.names or list(BENCHMARKS)
    if len(names) == 1:
        BENCHMARKS[names[0]].run(args)
    else:
        # Each in its own process: the Amazon benchmarks configure Django against their own scratch
        # database, which a second benchmark in the same process would inherit (and find dropped).
        options = [arg for arg in argv if arg not in BENCHMARKS]
        for name in names:
            code = subprocess.call([sys.executable, "-m", "benchmarks", name, *options])
            if code:
                print(f"benchmark {name} failed (exit {code})")
                return code
    print(f"\nbenchmarks finished in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
