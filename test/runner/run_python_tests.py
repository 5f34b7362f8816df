"""
Runs the Python unit tests (test/runner/test_*.py) and writes their counts as JSON, in the shape of
vitest's JSON report, so that .ci/run's summary line counts them with the rest:
`python3 test/runner/run_python_tests.py python-results.json`.
"""
import json
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
result = unittest.TextTestRunner(verbosity=2).run(unittest.defaultTestLoader.discover(here, pattern="test_*.py"))
failed = len(result.failures) + len(result.errors)
# Failures, errors and skips by name, so that the summary at the end of CI's log names them.
bad = [(t, text) for t, text in result.failures + result.errors] + [(t, "skipped: " + why) for t, why in result.skipped]
assertions = [{"status": "failed", "fullName": t.id(), "failureMessages": [text.strip().splitlines()[-1]]} for t, text in bad]
files = [{"name": "python unit tests", "status": "failed" if bad else "passed", "assertionResults": assertions}]
report = {"numPassedTests": result.testsRun - failed - len(result.skipped), "numFailedTests": failed + len(result.skipped), "testResults": files}
with open(sys.argv[1], "w") as f:
    json.dump(report, f)
sys.exit(0 if failed == 0 and not result.skipped else 1)
