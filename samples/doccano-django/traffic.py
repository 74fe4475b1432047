"""Drives doccano's REST API for the recplay sample.

Subcommands:
  login     POST /v1/auth/login/ until it answers 200 with a key (readiness of
            the app and its database), within --timeout seconds.
  wait-me   GET /v1/me with the fixed token until it answers 200.
  drive     The recorded traffic: users, two polymorphic project types, their
            label types, examples, annotations, members, roles, metrics.
            Every call's status is checked, and every project GET/PATCH/POST
            answer is checked for the right `resourcetype`; the first wrong
            answer stops the run with a message naming the call.

Only the standard library is used, so any Python 3.8+ runs it.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


class CallFailed(Exception):
    pass


class Client:
    def __init__(self, base, token=None, timeout=30):
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.calls = 0

    def call(self, method, path, body=None, expect=200):
        """One request; returns the parsed JSON body (or None when empty)."""
        url = self.base + path
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Token " + self.token
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        self.calls += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise CallFailed(f"{method} {path}: no answer from {self.base}: {e}") from e
        if status != expect:
            text = raw[:500].decode("utf-8", "replace")
            raise CallFailed(f"{method} {path}: expected status {expect}, got {status}: {text}")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise CallFailed(f"{method} {path}: the answer is not JSON: {raw[:200]!r}") from e


def check_resourcetype(what, obj, expected):
    got = obj.get("resourcetype") if isinstance(obj, dict) else None
    if got != expected:
        raise CallFailed(f"{what}: resourcetype is {got!r}, expected {expected!r}")


def poll(what, timeout, attempt):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return attempt()
        except CallFailed as e:
            last = e
            time.sleep(1)
    raise CallFailed(f"{what} did not succeed within {timeout}s; last error: {last}")


def cmd_login(args):
    password = os.environ.get(args.password_env, "")
    client = Client(args.base, timeout=10)

    def attempt():
        body = client.call("POST", "/v1/auth/login/", {"username": args.user, "password": password})
        if not isinstance(body, dict) or not body.get("key"):
            raise CallFailed("POST /v1/auth/login/: no key in the answer")
        return body

    poll("login", args.timeout, attempt)
    print(f"logged in as {args.user}", file=sys.stderr)


def cmd_wait_me(args):
    client = Client(args.base, token=args.token, timeout=10)
    me = poll("GET /v1/me", args.timeout, lambda: client.call("GET", "/v1/me"))
    print(f"GET /v1/me answers 200 for {me.get('username')!r}", file=sys.stderr)


# The polymorphic project types the traffic creates: resourcetype, the
# project_type doccano stores, and the label type / annotation kind each uses.
PROJECTS = [
    {
        "resourcetype": "TextClassificationProject",
        "project_type": "DocumentClassification",
        "label_types": "category-types",
        "annotations": "categories",
        "distribution": "category-distribution",
    },
    {
        "resourcetype": "SequenceLabelingProject",
        "project_type": "SequenceLabeling",
        "label_types": "span-types",
        "annotations": "spans",
        "distribution": "span-distribution",
    },
]


def annotator_password(run_id):
    """The new annotator's password. flow.sh fixes it (DOCCANO_ANNOTATOR_PASSWORD)
    so that replay can supply it: recordings keep a placeholder in its place."""
    return os.environ.get("DOCCANO_ANNOTATOR_PASSWORD") or "Zq7-wobble-Kestrel-" + run_id


def drive(c, run_id):
    # Warm-up: every gunicorn worker loads its URL conf, auth and content
    # types before the first recorded project call.
    for _ in range(8):
        c.call("GET", "/v1/me")
    c.call("GET", "/v1/roles")
    roles = {r["name"]: r["id"] for r in c.call("GET", "/v1/roles")}
    if "annotator" not in roles:
        raise CallFailed(f"GET /v1/roles: no annotator role in {sorted(roles)}")
    c.call("GET", "/v1/users")
    user = c.call(
        "POST",
        "/v1/users/create",
        {
            "username": f"annotator{run_id}",
            "email": f"annotator{run_id}@example.com",
            "password1": annotator_password(run_id),
            "password2": annotator_password(run_id),
        },
        expect=201,
    )
    c.call("GET", f"/v1/users?q=annotator{run_id}")

    created = []
    for spec in PROJECTS:
        body = {
            "name": f"{spec['resourcetype']} {run_id}",
            "description": "recorded by the recplay doccano sample",
            "guideline": "label everything",
            "project_type": spec["project_type"],
            "resourcetype": spec["resourcetype"],
            "random_order": False,
            "collaborative_annotation": False,
            "single_class_classification": False,
            "allow_member_to_create_label_type": False,
            "tags": [],
        }
        p = c.call("POST", "/v1/projects", body, expect=201)
        check_resourcetype(f"POST /v1/projects ({spec['resourcetype']})", p, spec["resourcetype"])
        created.append((spec, p["id"]))

    c.call("GET", "/v1/projects")
    listing = c.call("GET", "/v1/projects?limit=10&offset=0&ordering=-created_at")
    by_id = {p["id"]: p for p in listing.get("results", [])}
    for spec, pid in created:
        if pid not in by_id:
            raise CallFailed(f"GET /v1/projects: project {pid} is missing from the list")
        check_resourcetype(f"GET /v1/projects (project {pid})", by_id[pid], spec["resourcetype"])

    # Interleave the two types so that each project's look-ups follow the
    # other's: a replay that answers one project's queries with the other's
    # recording shows up as a flipped resourcetype.
    for spec, pid in created:
        got = c.call("GET", f"/v1/projects/{pid}")
        check_resourcetype(f"GET /v1/projects/{pid}", got, spec["resourcetype"])
    for spec, pid in created:
        got = c.call("PATCH", f"/v1/projects/{pid}", {"description": f"patched {spec['resourcetype']}"})
        check_resourcetype(f"PATCH /v1/projects/{pid}", got, spec["resourcetype"])

    for spec, pid in created:
        base = f"/v1/projects/{pid}"
        c.call("GET", f"{base}/my-role")
        c.call("GET", f"{base}/members")
        c.call("POST", f"{base}/members", {"user": user["id"], "role": roles["annotator"]}, expect=201)
        c.call("GET", f"{base}/members")
        c.call("POST", f"{base}/tags", {"text": "sample"}, expect=201)
        c.call("GET", f"{base}/tags")

        label = c.call(
            "POST",
            f"{base}/{spec['label_types']}",
            {"text": "positive", "suffix_key": "p", "background_color": "#209cee", "text_color": "#ffffff"},
            expect=201,
        )
        c.call("POST", f"{base}/{spec['label_types']}", {"text": "negative", "background_color": "#ff3860"}, expect=201)
        c.call("GET", f"{base}/{spec['label_types']}")
        c.call("GET", f"{base}/{spec['label_types']}/{label['id']}")

        example = c.call("POST", f"{base}/examples", {"text": "doccano replays well", "meta": {"n": 1}}, expect=201)
        c.call("POST", f"{base}/examples", {"text": "second example", "meta": {}}, expect=201)
        c.call("GET", f"{base}/examples?limit=10&offset=0")
        c.call("GET", f"{base}/examples/{example['id']}")
        ann_path = f"{base}/examples/{example['id']}/{spec['annotations']}"
        if spec["annotations"] == "categories":
            c.call("POST", ann_path, {"label": label["id"]}, expect=201)
        else:
            c.call("POST", ann_path, {"label": label["id"], "start_offset": 0, "end_offset": 7}, expect=201)
        c.call("GET", ann_path)
        c.call("POST", f"{base}/examples/{example['id']}/states", None, expect=201)
        c.call("GET", f"{base}/examples/{example['id']}/states")

        c.call("GET", f"{base}/metrics/progress")
        c.call("GET", f"{base}/metrics/member-progress")
        c.call("GET", f"{base}/metrics/{spec['distribution']}")

    # A last polymorphic read of each, after everything else touched them.
    for spec, pid in created:
        got = c.call("GET", f"/v1/projects/{pid}")
        check_resourcetype(f"GET /v1/projects/{pid} (final)", got, spec["resourcetype"])
    return [pid for _, pid in created]


def cmd_drive(args):
    c = Client(args.base, token=args.token, timeout=60)
    run_id = args.run_id or time.strftime("%Y%m%d%H%M%S")
    started = time.monotonic()
    ids = drive(c, run_id)
    print(
        f"record-traffic: {c.calls} calls answered as expected in {time.monotonic() - started:.1f}s;"
        f" projects {ids} keep their resourcetype",
        file=sys.stderr,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("login")
    p.add_argument("--base", required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--user", required=True)
    p.add_argument("--password-env", required=True, help="environment variable holding the password")
    p = sub.add_parser("wait-me")
    p.add_argument("--base", required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--token", required=True)
    p = sub.add_parser("drive")
    p.add_argument("--base", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--run-id", help="suffix for created names (default: the UTC time)")
    args = ap.parse_args()
    try:
        {"login": cmd_login, "wait-me": cmd_wait_me, "drive": cmd_drive}[args.cmd](args)
    except CallFailed as e:
        print(f"FAILED {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
