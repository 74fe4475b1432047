"""Per-test and total line coverage of doccano's backend from an LCOV file.

`recplay coverage export --format lcov` writes one TN (test name) section
per replayed test. A line is coverable when any section lists it (DA), and
covered when any section counts it. Only files under doccano's backend
directory (--source) count; relative paths are taken relative to it.

recplay's export also writes a `startup` section (lines run outside any
test, e.g. while gunicorn imported the app) that lists every source file, so
files no test touched count at 0%. It is part of the total, not a test.

doccano's own tests and migrations are not counted (--omit): they are in the
package but never part of serving the API.

Prints one line per test, then the total as `Covered N/M (X%)`.
"""

import argparse
import fnmatch
import os
import sys


def parse_lcov(path):
    """{test name: {file: {line: count}}}."""
    tests = {}
    name, current = "", None
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if line.startswith("TN:"):
                name = line[3:]
            elif line.startswith("SF:"):
                current = tests.setdefault(name, {}).setdefault(line[3:], {})
            elif line.startswith("DA:") and current is not None:
                parts = line[3:].split(",")
                try:
                    lineno, count = int(parts[0]), int(float(parts[1]))
                except (IndexError, ValueError):
                    continue
                current[lineno] = max(current.get(lineno, 0), count)
            elif line == "end_of_record":
                current = None
    return tests


def in_source(path, source):
    if os.path.isabs(path):
        real = os.path.realpath(path)
        return real == source or real.startswith(source + os.sep)
    return os.path.exists(os.path.join(source, path))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lcov", required=True)
    ap.add_argument("--source", required=True, help="doccano's backend directory")
    ap.add_argument(
        "--omit",
        default="*/migrations/*,*/tests/*,tests/*",
        help="comma-separated patterns of files (relative to --source) not counted",
    )
    args = ap.parse_args()
    source = os.path.realpath(args.source)
    omit = [p for p in args.omit.split(",") if p]
    try:
        tests = parse_lcov(args.lcov)
    except OSError as e:
        print(f"cannot read {args.lcov}: {e}", file=sys.stderr)
        return 1

    coverable, covered = set(), set()
    per_test = {}
    for name, files in tests.items():
        hit = set()
        for path, lines in files.items():
            if not in_source(path, source):
                continue
            key = os.path.relpath(os.path.realpath(path), source) if os.path.isabs(path) else path
            if any(fnmatch.fnmatch(key, pat) or fnmatch.fnmatch("/" + key, pat) for pat in omit):
                continue
            for lineno, count in lines.items():
                coverable.add((key, lineno))
                if count > 0:
                    hit.add((key, lineno))
        covered |= hit
        per_test[name] = hit

    total = len(coverable)
    if total == 0:
        print(f"{args.lcov} holds no lines of {source}", file=sys.stderr)
        return 1

    def pct(n):
        return 100.0 * n / total

    named = {k: v for k, v in per_test.items() if k and k != "startup"}
    if named:
        print(f"per-test line coverage of doccano's backend ({len(named)} tests):")
        for name in sorted(named, key=lambda n: [int(t) if t.isdigit() else t for t in _split(n)]):
            n = len(named[name])
            print(f"  {name:40s} Covered {n}/{total} ({pct(n):.1f}%)")
    if "startup" in per_test:
        n = len(per_test["startup"])
        print(f"  {'(outside tests: start-up)':40s} Covered {n}/{total} ({pct(n):.1f}%)")
    n = len(covered)
    print(f"total line coverage of doccano's backend: Covered {n}/{total} ({pct(n):.1f}%)")
    return 0


def _split(name):
    out, buf, digit = [], "", None
    for ch in name:
        d = ch.isdigit()
        if buf and d != digit:
            out.append(buf)
            buf = ""
        buf += ch
        digit = d
    if buf:
        out.append(buf)
    return out


if __name__ == "__main__":
    sys.exit(main())
