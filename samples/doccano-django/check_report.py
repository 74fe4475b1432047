"""Checks the latest `recplay test` run of the doccano sample.

Reads keploy/reports/test-run-<N>/*-report.yaml (the highest N) in Keploy's
report schema: `tests:` entries with `status`, `test_case_id`/`name`, `req`
(method, url) and `resp` (the actual response; Keploy's `res` is read too). The polymorphic answers are
the project ones: POST/GET/PATCH /v1/projects[/<id>]. For each, the
`resourcetype` of every project in the actual response is compared with the
recorded response's.

  --expect-pass                 every test passed and every resourcetype is
                                right (the default matcher).
  --expect-polymorphic-failure  the run failed, and among the failures are
                                project GET/PATCH tests (the collapsing
                                matcher must be caught).
"""

import argparse
import base64
import glob
import json
import os
import re
import sys
from urllib.parse import urlsplit

import yaml

PROJECT_DETAIL = re.compile(r"^/v1/projects/\d+/?$")
PROJECT_LIST = re.compile(r"^/v1/projects/?$")


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def run_number(keploy):
    run = latest_run(keploy)
    return int(run.rsplit("-", 1)[1]) if run else -1


def latest_run(keploy):
    runs = glob.glob(os.path.join(keploy, "reports", "test-run-*"))
    runs = [r for r in runs if re.search(r"test-run-\d+$", r)]
    if not runs:
        return None
    return max(runs, key=lambda r: int(r.rsplit("-", 1)[1]))


def body_json(text):
    if isinstance(text, (dict, list)):
        return text
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def resourcetypes(body):
    """{project id: resourcetype} for a project or a page of projects."""
    if isinstance(body, dict) and "resourcetype" in body:
        return {body.get("id"): body.get("resourcetype")}
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        return {p.get("id"): p.get("resourcetype") for p in body["results"] if isinstance(p, dict)}
    return {}


def actual_body(test):
    # `resp` is recplay's name for the actual response; Keploy's is `res`.
    res = test.get("resp") or test.get("res") or {}
    if "body" in res:
        body = res.get("body")
        if res.get("body_encoding") == "base64" and isinstance(body, str):
            try:
                return base64.b64decode(body).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None
        return body
    # Fall back on the comparison result when the report keeps no response.
    for item in (test.get("result") or {}).get("body_result") or []:
        if isinstance(item, dict) and "actual" in item:
            return item["actual"]
    return None


def recorded_test(keploy, test_set, test):
    for key in ("test_case_id", "name"):
        name = test.get(key)
        if not name:
            continue
        path = os.path.join(keploy, test_set, "tests", f"{name}.yaml")
        if os.path.isfile(path):
            return load_yaml(path)
    # recplay's test_case_path is the tests directory; Keploy's may be the file.
    path = test.get("test_case_path")
    if path and os.path.isfile(path):
        return load_yaml(path)
    if path and os.path.isdir(path) and test.get("test_case_id"):
        candidate = os.path.join(path, f"{test['test_case_id']}.yaml")
        if os.path.isfile(candidate):
            return load_yaml(candidate)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keploy", required=True)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--expect-pass", action="store_true")
    mode.add_argument("--expect-polymorphic-failure", action="store_true")
    ap.add_argument("--exit-code", type=int, required=True, help="recplay test's exit code")
    ap.add_argument(
        "--newer-than",
        type=int,
        default=-1,
        help="the highest test-run number that existed before this replay; an older report is stale",
    )
    args = ap.parse_args()

    run = latest_run(args.keploy)
    if run is None:
        print(f"no reports under {args.keploy}/reports: recplay test wrote nothing", file=sys.stderr)
        return 1
    if int(run.rsplit("-", 1)[1]) <= args.newer_than:
        print(f"recplay test wrote no new report (the latest is {run}, from an earlier run)", file=sys.stderr)
        return 1
    reports = sorted(
        p for p in glob.glob(os.path.join(run, "*-report.yaml")) if os.path.basename(p) != "run-report.yaml"
    )
    if not reports:
        print(f"{run} holds no *-report.yaml", file=sys.stderr)
        return 1

    passed, failed = [], []
    poly_checked = {"GET": 0, "PATCH": 0, "POST": 0}
    flips, poly_failed = [], []
    for report_path in reports:
        try:
            report = load_yaml(report_path) or {}
        except (OSError, yaml.YAMLError) as e:
            print(f"{report_path} cannot be read: {e}", file=sys.stderr)
            return 1
        test_set = report.get("test_set") or os.path.basename(report_path)[: -len("-report.yaml")]
        for test in report.get("tests") or []:
            req = test.get("req") or {}
            method = str(req.get("method", "")).upper()
            path = urlsplit(str(req.get("url", ""))).path
            label = f"{test_set}/{test.get('test_case_id') or test.get('name')} {method} {path}"
            ok = str(test.get("status", "")).upper() == "PASSED"
            (passed if ok else failed).append(label)
            is_detail = PROJECT_DETAIL.match(path) and method in ("GET", "PATCH")
            if not ok and is_detail:
                poly_failed.append(label)
            if not (is_detail or (PROJECT_LIST.match(path) and method in ("GET", "POST"))):
                continue
            recorded = recorded_test(args.keploy, test_set, test)
            if recorded is None:
                print(f"{label}: recorded test case not found", file=sys.stderr)
                return 1
            want = resourcetypes(body_json(((recorded.get("spec") or {}).get("resp") or {}).get("body")))
            got = resourcetypes(body_json(actual_body(test)))
            if not want:
                continue
            poly_checked[method] += 1
            for pid, rtype in want.items():
                if got.get(pid) != rtype:
                    flips.append(f"{label}: project {pid} resourcetype {got.get(pid)!r}, recorded {rtype!r}")

    total = len(passed) + len(failed)
    print(f"replay: {len(passed)} passed, {len(failed)} failed")
    print(
        "resourcetype checked on {GET} GET, {PATCH} PATCH and {POST} POST project answers".format(**poly_checked)
        + f"; {len(flips)} wrong"
    )
    for f in failed[:40]:
        print(f"  failed: {f}")
    for f in flips[:40]:
        print(f"  flipped: {f}")

    if args.expect_pass:
        problems = []
        if args.exit_code != 0:
            problems.append(f"recplay test exited with {args.exit_code}")
        if total == 0:
            problems.append("the report holds no tests")
        if failed:
            problems.append(f"{len(failed)} tests failed")
        if flips:
            problems.append(f"{len(flips)} project answers have a wrong resourcetype")
        if poly_checked["GET"] == 0 or poly_checked["PATCH"] == 0:
            problems.append("no polymorphic GET/PATCH answer was checked (were the projects recorded?)")
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        return 1 if problems else 0

    # --expect-polymorphic-failure
    problems = []
    if args.exit_code == 0:
        problems.append("recplay test exited 0 with the collapsing matcher")
    if not poly_failed:
        problems.append("no project GET/PATCH test failed with the collapsing matcher")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print(f"the collapsing matcher was caught: {len(poly_failed)} project GET/PATCH tests failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
