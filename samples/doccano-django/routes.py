"""doccano's API route table, and how much of it the recorded tests cover.

Run inside doccano's backend directory with its settings in the
environment (flow.sh list-routes does that). The table comes from Django's
URL resolver; each route's methods are the ones its view really serves (the
handler methods the view class defines), not Django's permissive
http_method_names default. HEAD and OPTIONS are left out: every view answers
them.

A recorded test covers the route Django resolves its URL to, with its method.
The API surface is everything under /v1/.
"""

import argparse
import glob
import os
import sys
from urllib.parse import urlsplit

import django

METHODS = ("get", "post", "put", "patch", "delete")


def view_methods(callback):
    """The HTTP methods a resolved view callback serves."""
    actions = getattr(callback, "actions", None)  # DRF viewsets
    if actions:
        return sorted(m.upper() for m in actions if m in METHODS)
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is None:
        # A plain function view: methods are not declared; say GET.
        allowed = getattr(callback, "http_method_names", None) or ["get"]
        return sorted(m.upper() for m in allowed if m in METHODS)
    return sorted(m.upper() for m in METHODS if hasattr(cls, m) and m in cls.http_method_names)


def walk(patterns, prefix, join):
    from django.urls import URLPattern, URLResolver

    for p in patterns:
        route = join(prefix, str(p.pattern)) if prefix else str(p.pattern)
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, route, join)
        elif isinstance(p, URLPattern):
            yield route, p.callback


def route_table(api_only=True):
    from django.urls import URLResolver, get_resolver

    join = URLResolver._join_route
    table = {}
    for route, callback in walk(get_resolver().url_patterns, "", join):
        if api_only and not route.lstrip("^").startswith("v1/"):
            continue
        for method in view_methods(callback):
            table.setdefault((method, route), callback)
    return table


def recorded_calls(keploy_dir):
    """(method, path) of every recorded HTTP test under keploy/test-set-*/tests/."""
    import yaml

    calls = []
    for path in sorted(glob.glob(os.path.join(keploy_dir, "test-set-*", "tests", "*.yaml"))):
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            print(f"skipping {path}: {e}", file=sys.stderr)
            continue
        req = ((doc or {}).get("spec") or {}).get("req") or {}
        method, url = req.get("method"), req.get("url")
        if method and url:
            calls.append((str(method).upper(), urlsplit(url).path or "/"))
    return calls


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keploy", help="the keploy directory holding test-set-*/tests/")
    ap.add_argument("--all", action="store_true", help="list routes outside /v1/ too")
    ap.add_argument("--quiet", action="store_true", help="print only the summary")
    args = ap.parse_args()

    sys.path.insert(0, os.getcwd())
    django.setup()
    from django.urls import Resolver404, resolve

    table = route_table(api_only=not args.all)
    covered = {}
    unresolved = []
    if args.keploy:
        for method, path in recorded_calls(args.keploy):
            try:
                match = resolve(path)
            except Resolver404:
                unresolved.append((method, path))
                continue
            key = (method, match.route)
            if key in table:
                covered[key] = covered.get(key, 0) + 1
            else:
                unresolved.append((method, path))

    if not args.quiet:
        for method, route in sorted(table, key=lambda k: (k[1], k[0])):
            hits = covered.get((method, route), 0)
            mark = f"{hits:3d}x" if hits else "   -"
            print(f"{mark}  {method:6s} /{route.replace('^', '').replace('$', '')}")
    total = len(table)
    n = len(covered)
    pct = 100.0 * n / total if total else 0.0
    print(f"routes: {total} (method, path) pairs under /v1/" if not args.all else f"routes: {total}")
    if args.keploy:
        print(f"API coverage: {n}/{total} routes ({pct:.1f}%) hit by the recorded tests in {args.keploy}")
        for method, path in unresolved:
            print(f"  recorded call outside the table: {method} {path}")


if __name__ == "__main__":
    main()
