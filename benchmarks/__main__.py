"""`python -m benchmarks [name ...] [options]`: run the benchmarks (all by default).

Run through `make bench`, which starts (or points at) the database and exports its URLs.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks import amazon_orders, amazon_tokens, rls_cost

BENCHMARKS = {"rls_cost": rls_cost, "amazon_tokens": amazon_tokens, "amazon_orders": amazon_orders}


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
    for name in args.names or list(BENCHMARKS):
        BENCHMARKS[name].run(args)
    print(f"\nbenchmarks finished in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
