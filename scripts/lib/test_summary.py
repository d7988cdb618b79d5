"""Print one line per backend run and a closing total from pytest's JUnit XML files."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

totals = {"passed": 0, "failed": 0, "skipped": 0}
for path in sys.argv[1:]:
    file = Path(path)
    if not file.exists():
        continue
    suite = ET.parse(file).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    tests, failures, errors, skipped = (
        int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")
    )
    passed = tests - failures - errors - skipped
    failed = failures + errors
    counts = f"{passed} passed, {failed} failed, {skipped} skipped"
    print(f"{file.stem}: {tests} tests executed: {counts}")
    totals["passed"] += passed
    totals["failed"] += failed
    totals["skipped"] += skipped
print(f"total: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
sys.exit(1 if totals["failed"] or not totals["passed"] else 0)
