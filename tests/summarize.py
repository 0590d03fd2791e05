#!/usr/bin/env python3
"""summarize.py — sum up the JUnit XML files of a test run (and the JSON event
streams of `go test -json`, *.gotest.json) into one closing line,
"N passed, N failed, N skipped", and exit non-zero if a test or a stage
failed. Usage: summarize.py RESULTS_DIR [FAILED_STAGE ...]"""
import json
import pathlib
import sys
import xml.etree.ElementTree as ET


def count(path):
    passed = failed = skipped = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def count_go(path):
    """Tests (not packages) that passed, failed or were skipped in a
    `go test -json` event stream; non-JSON lines (build output) are ignored."""
    outcome = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("Test") and event.get("Action") in ("pass", "fail", "skip"):
            outcome[(event.get("Package"), event["Test"])] = event["Action"]
    actions = list(outcome.values())
    return actions.count("pass"), actions.count("fail"), actions.count("skip")


def main():
    results = pathlib.Path(sys.argv[1])
    stages = sys.argv[2:]
    totals = [0, 0, 0]
    files = [(x, count) for x in sorted(results.glob("*.xml"))]
    files += [(j, count_go) for j in sorted(results.glob("*.gotest.json"))]
    for path, counter in files:
        p, f, s = counter(path)
        print(f"{path.name}: {p} passed, {f} failed, {s} skipped")
        totals = [totals[0] + p, totals[1] + f, totals[2] + s]
    for stage in stages:
        print(f"stage failed: {stage}")
    print(f"tests: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] or stages or totals[0] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
