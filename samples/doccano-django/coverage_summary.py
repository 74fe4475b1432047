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

The denominator M is every executable statement of every backend source
file, as coverage.py's parser counts them (when coverage.py is importable;
otherwise the statements the export lists). So the total stays right even
when the export lists only the files that ran, and a covered line inside a
multi-line statement counts once, for the statement.

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


def source_statements(source, omit):
    """{relative path: statement lines} for every .py file under source, or
    None when coverage.py is not importable."""
    try:
        from coverage.parser import PythonParser
    except ImportError:
        return None
    statements = {}
    for directory, subdirs, names in os.walk(source):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(directory, name), source)
            if omitted(rel, omit):
                continue
            parser = PythonParser(filename=os.path.join(directory, name))
            try:
                parser.parse_source()
            except Exception as e:  # a file coverage.py cannot parse counts as nothing
                print(f"not counted: {rel}: {e}", file=sys.stderr)
                continue
            statements[rel] = (parser, set(parser.statements))
    return statements


def omitted(rel, omit):
    return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch("/" + rel, pat) for pat in omit)


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

    parsed = source_statements(source, omit)
    coverable, covered = set(), set()
    if parsed is not None:
        coverable = {(rel, line) for rel, (_, stmts) in parsed.items() for line in stmts}
    per_test = {}
    for name, files in tests.items():
        hit = set()
        for path, lines in files.items():
            if not in_source(path, source):
                continue
            key = os.path.relpath(os.path.realpath(path), source) if os.path.isabs(path) else path
            if omitted(key, omit):
                continue
            if parsed is not None:
                if key not in parsed:
                    continue
                parser, stmts = parsed[key]
                for lineno, count in lines.items():
                    first = parser.first_line(lineno)
                    if count > 0 and first in stmts:
                        hit.add((key, first))
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

    if not covered:
        print(f"{args.lcov} shows no executed line of {source}", file=sys.stderr)
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
