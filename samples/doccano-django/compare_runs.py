"""Compares two recplay runs of the same test sets: an unsharded run and
the merge of its shards. They must hold the same tests with the same
verdicts, and, when both measured coverage, cover the same lines in total.
Timings and per-test attribution may differ (a shard starts its own app,
whose caches start cold at another test).

usage: compare_runs.py WHOLE_RUN_DIR MERGED_RUN_DIR
"""

import glob
import json
import os
import sys

import yaml


def verdicts(run):
    out = {}
    for path in glob.glob(os.path.join(run, "*-report.yaml")):
        if os.path.basename(path) == "run-report.yaml":
            continue
        with open(path) as f:
            report = yaml.safe_load(f) or {}
        name = report.get("test_set") or os.path.basename(path)[: -len("-report.yaml")]
        for test in report.get("tests") or []:
            out[(name, test.get("test_case_id") or test.get("name"))] = str(test.get("status"))
    return out


def covered_lines(run):
    path = os.path.join(run, "coverage.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    lines = set()
    for test in data.get("tests") or []:
        for file, measured in (test.get("files") or {}).items():
            lines.update((file, n) for n in measured.get("lines") or [])
    return lines


def main():
    whole, merged = sys.argv[1], sys.argv[2]
    a, b = verdicts(whole), verdicts(merged)
    problems = []
    if a.keys() != b.keys():
        problems.append(f"tests only in the whole run: {sorted(a.keys() - b.keys())[:5]}")
        problems.append(f"tests only in the merged run: {sorted(b.keys() - a.keys())[:5]}")
    differing = [k for k in a.keys() & b.keys() if a[k] != b[k]]
    if differing:
        problems.append(f"verdicts differ for {sorted(differing)[:5]}")
    la, lb = covered_lines(whole), covered_lines(merged)
    if la is not None and lb is not None and la != lb:
        problems.append(
            f"covered lines differ: {len(la - lb)} only in the whole run, {len(lb - la)} only in the merged one"
        )
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print(f"same {len(a)} tests and verdicts" + (f", same {len(la)} covered lines" if la else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
