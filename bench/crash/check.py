"""Counts, for one round of bench/crash/run.sh, what the client received in
full against the test files the recovered test set holds.

Prints: received files corrupt duplicates missing leftovers
"""
import os
import sys
from collections import Counter

import yaml

received_path, set_dir = sys.argv[1], sys.argv[2]
received = set()
if os.path.exists(received_path):
    with open(received_path) as f:
        received = {line.strip() for line in f if line.strip()}

tests_dir = os.path.join(set_dir, "tests")
paths = Counter()
corrupt = 0
files = 0
leftovers = [n for n in os.listdir(set_dir) if n.startswith(".")] if os.path.isdir(set_dir) else []
if os.path.isdir(tests_dir):
    for name in os.listdir(tests_dir):
        if name.startswith("."):
            leftovers.append("tests/" + name)
            continue
        files += 1
        try:
            with open(os.path.join(tests_dir, name)) as f:
                doc = yaml.safe_load(f)
            url = doc["spec"]["req"]["url"]
            paths["/" + url.split("/", 3)[3]] += 1
            if doc.get("kind") != "Http" or "curl" not in doc:
                corrupt += 1
        except Exception:
            corrupt += 1
duplicates = sum(n - 1 for n in paths.values() if n > 1)
missing = len([p for p in received if p not in paths])
print(len(received), files, corrupt, duplicates, missing, len(leftovers))
