"""``python -m brainlib.fuzzing``: run the mutated-file corpus and print the outcome table.

Exit status 1 if any case escaped, hung, allocated beyond the limit, returned an invalid
result or raised a typed error not naming the file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from brainlib.fuzzing.corpus import FAILURES, run_corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brainlib.fuzzing", description=__doc__)
    parser.add_argument("--cases", type=int, default=3000, help="mutated files in all (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0, as in CI)")
    parser.add_argument("--only", nargs="*", help="target names (default: all)")
    parser.add_argument("--json", type=Path, help="also write the counts and failures here")
    args = parser.parse_args(argv)
    report = run_corpus(args.cases, args.seed, args.only)
    print(report.table())
    for f in report.failures[:20]:
        print(f"{f['outcome']}: {f['target']} case {f['case']} ({f['seed']}; {f['mutation']}): {f['detail']}")
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=1))
    return 1 if any(report.total.get(k, 0) for k in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
