"""Tests of the sample's checkers, on files in the shapes recplay writes.

check_report.py must pass a clean run, fail a run where a project answer's
resourcetype flipped even if every status says PASSED, and accept a
collapsing-matcher run only when project GET/PATCH tests failed.
coverage_summary.py must count lines once across tests and leave out
other files, tests and migrations.

Run: .work/venv/bin/python -m unittest test_checks (needs PyYAML).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def project(pid, rtype):
    return {"id": pid, "name": f"p{pid}", "resourcetype": rtype, "project_type": "x"}


def write_yaml(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f)


class KeployDir:
    """A test set with recorded project answers and one replay report."""

    def __init__(self, root):
        self.root = root
        self.tests = []

    def add(self, name, method, path, recorded, actual, status="PASSED"):
        write_yaml(
            os.path.join(self.root, "test-set-0", "tests", f"{name}.yaml"),
            {
                "version": "api.keploy.io/v1beta1",
                "kind": "Http",
                "name": name,
                "spec": {
                    "req": {"method": method, "url": f"http://127.0.0.1:1{path}"},
                    "resp": {"status_code": 200, "body": json.dumps(recorded)},
                },
            },
        )
        self.tests.append(
            {
                "kind": "Http",
                "name": name,
                "test_case_id": name,
                "status": status,
                "req": {"method": method, "url": f"http://127.0.0.1:2{path}"},
                "resp": {"status_code": 200, "body": json.dumps(actual)},
            }
        )

    def write_report(self, run=0):
        failed = sum(t["status"] != "PASSED" for t in self.tests)
        write_yaml(
            os.path.join(self.root, "reports", f"test-run-{run}", "test-set-0-report.yaml"),
            {
                "name": "test-set-0",
                "test_set": "test-set-0",
                "status": "FAILED" if failed else "PASSED",
                "success": len(self.tests) - failed,
                "failure": failed,
                "total": len(self.tests),
                "tests": self.tests,
            },
        )
        write_yaml(os.path.join(self.root, "reports", f"test-run-{run}", "run-report.yaml"), {"total": 1})


def check(root, *flags):
    return subprocess.run(
        [sys.executable, os.path.join(HERE, "check_report.py"), "--keploy", root, *flags],
        capture_output=True,
        text=True,
    )


TC, SL = "TextClassificationProject", "SequenceLabelingProject"


class CheckReportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.k = KeployDir(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def add_clean(self):
        self.k.add("test-1", "GET", "/v1/projects", {"results": [project(1, TC), project(2, SL)]},
                   {"results": [project(1, TC), project(2, SL)]})
        self.k.add("test-2", "GET", "/v1/projects/1", project(1, TC), project(1, TC))
        self.k.add("test-3", "PATCH", "/v1/projects/2", project(2, SL), project(2, SL))

    def test_a_clean_run_passes(self):
        self.add_clean()
        self.k.write_report()
        r = check(self.tmp.name, "--expect-pass", "--exit-code", "0")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("replay: 3 passed, 0 failed", r.stdout)
        self.assertIn("2 GET, 1 PATCH and 0 POST project answers; 0 wrong", r.stdout)

    def test_a_flipped_resourcetype_fails_even_when_marked_passed(self):
        self.add_clean()
        self.k.add("test-4", "GET", "/v1/projects/2", project(2, SL), project(2, TC))
        self.k.write_report()
        r = check(self.tmp.name, "--expect-pass", "--exit-code", "0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("project 2 resourcetype 'TextClassificationProject', recorded 'SequenceLabelingProject'", r.stdout)

    def test_a_failed_test_or_exit_code_fails(self):
        self.add_clean()
        self.k.write_report()
        self.assertEqual(check(self.tmp.name, "--expect-pass", "--exit-code", "1").returncode, 1)

    def test_no_report_fails(self):
        r = check(self.tmp.name, "--expect-pass", "--exit-code", "0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no reports", r.stderr)

    def test_the_collapse_check_wants_failed_project_reads(self):
        self.add_clean()
        self.k.add("test-4", "GET", "/v1/projects/2", project(2, SL), project(1, TC), status="FAILED")
        self.k.write_report()
        r = check(self.tmp.name, "--expect-polymorphic-failure", "--exit-code", "1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("collapsing matcher was caught", r.stdout)

    def test_the_collapse_check_fails_when_everything_passed(self):
        self.add_clean()
        self.k.write_report()
        r = check(self.tmp.name, "--expect-polymorphic-failure", "--exit-code", "0")
        self.assertEqual(r.returncode, 1)

    def test_the_latest_run_is_read(self):
        self.add_clean()
        self.k.write_report(run=1)
        self.k.add("test-4", "GET", "/v1/projects/2", project(2, SL), project(2, TC), status="FAILED")
        self.k.write_report(run=10)
        self.assertEqual(check(self.tmp.name, "--expect-pass", "--exit-code", "0").returncode, 1)

    def test_a_stale_report_is_not_taken_for_this_run(self):
        self.add_clean()
        self.k.write_report(run=3)
        r = check(self.tmp.name, "--expect-pass", "--exit-code", "0", "--newer-than", "3")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no new report", r.stderr)
        self.assertEqual(check(self.tmp.name, "--expect-pass", "--exit-code", "0", "--newer-than", "2").returncode, 0)


class CoverageSummaryTest(unittest.TestCase):
    def test_lines_are_counted_once_and_other_files_left_out(self):
        with tempfile.TemporaryDirectory() as src:
            for rel in ("projects/models.py", "projects/migrations/0001.py", "projects/tests/t.py"):
                os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
                with open(os.path.join(src, rel), "w") as f:
                    # Four statements; the last spans lines 4-5.
                    f.write("a = 1\nb = 2\nc = 3\nd = (4,\n     5)\n")
            models = os.path.join(src, "projects/models.py")
            lcov = os.path.join(src, "run.lcov")
            with open(lcov, "w") as f:
                f.write(
                    f"TN:startup\nSF:{models}\nDA:1,1\nDA:2,0\nDA:3,0\nDA:4,0\nend_of_record\n"
                    f"SF:{src}/projects/migrations/0001.py\nDA:1,0\nend_of_record\n"
                    f"SF:{src}/projects/tests/t.py\nDA:1,1\nend_of_record\n"
                    "SF:/usr/lib/python3/os.py\nDA:1,1\nend_of_record\n"
                    f"TN:test_set_0_test_1\nSF:{models}\nDA:1,1\nDA:2,1\nend_of_record\n"
                    f"TN:test_set_0_test_2\nSF:{models}\nDA:2,1\nDA:3,1\nDA:5,1\nend_of_record\n"
                )
            r = subprocess.run(
                [sys.executable, os.path.join(HERE, "coverage_summary.py"), "--lcov", lcov, "--source", src],
                capture_output=True,
                text=True,
            )
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("test_set_0_test_1                        Covered 2/4 (50.0%)", r.stdout)
            # Line 5 is inside the statement starting on line 4: it counts for it.
            self.assertIn("test_set_0_test_2                        Covered 3/4 (75.0%)", r.stdout)
            self.assertIn("Covered 4/4 (100.0%)", r.stdout.splitlines()[-1])

    def test_files_the_export_leaves_out_still_count(self):
        with tempfile.TemporaryDirectory() as src:
            for rel in ("a.py", "b.py"):
                with open(os.path.join(src, rel), "w") as f:
                    f.write("x = 1\ny = 2\n")
            lcov = os.path.join(src, "run.lcov")
            with open(lcov, "w") as f:
                f.write(f"TN:t1\nSF:{src}/a.py\nDA:1,1\nDA:2,0\nend_of_record\n")
            r = subprocess.run(
                [sys.executable, os.path.join(HERE, "coverage_summary.py"), "--lcov", lcov, "--source", src],
                capture_output=True,
                text=True,
            )
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Covered 1/4 (25.0%)", r.stdout.splitlines()[-1])


if __name__ == "__main__":
    unittest.main()
