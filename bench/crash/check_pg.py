"""Counts, for one round of bench/crash/run_pg.sh, the queries a client got
its whole answer to against the mocks the recovered mocks.yaml holds.

A document is corrupt when it is not closed by its `...` end marker or
does not parse as YAML; a tag found in more than one document is a
duplicate; a tag the client saw answered and no document holds is missing.

Prints: received mocks corrupt duplicates missing leftovers
"""
import os
import re
import sys
from collections import Counter

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
received_path, set_dir, tag_prefix = sys.argv[1], sys.argv[2], sys.argv[3]
received = set()
if os.path.exists(received_path):
    with open(received_path) as f:
        received = {line.strip() for line in f if line.strip()}

tag_re = re.compile(re.escape(tag_prefix) + r"-[0-9]+-[0-9]+-[0-9]+")
tags = Counter()
mocks = corrupt = 0
leftovers = [n for n in os.listdir(set_dir) if n.startswith(".")] if os.path.isdir(set_dir) else []
path = os.path.join(set_dir, "mocks.yaml")
text = open(path, encoding="utf-8", errors="replace").read() if os.path.exists(path) else ""
for doc in re.split(r"^---\n", text, flags=re.M):
    if not doc:
        continue
    if not doc.endswith("\n...\n") or doc.count("\n...\n") != 1:
        corrupt += 1
        continue
    try:
        parsed = yaml.load(doc[: -len("...\n")], Loader=Loader)
        if not isinstance(parsed, dict) or "name" not in parsed:
            corrupt += 1
            continue
    except Exception:
        corrupt += 1
        continue
    mocks += 1
    for found in set(tag_re.findall(doc)):
        tags[found] += 1
duplicates = sum(n - 1 for n in tags.values() if n > 1)
missing = len([t for t in received if t not in tags])
print(len(received), mocks, corrupt, duplicates, missing, len(leftovers))
