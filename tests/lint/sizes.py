#!/usr/bin/env python3
"""sizes.py — the size rule of worker/: no C file over 700 lines, no function
over 60 (from the line its signature starts on to its closing brace).

clang-format's Linux brace style puts a function's opening and closing
braces alone in column 0 and nothing else there, so a brace-matching pass
over column 0 finds every function. Usage: sizes.py FILE...; prints each
breach and exits 1 if any."""
import re
import sys

MAX_FILE, MAX_FUNC = 700, 60


def functions(lines):
    """(name, first line, last line) of each function, 1-based."""
    start = None
    for i, line in enumerate(lines):
        if line.rstrip() == "{":
            start = i
            while start > 0 and lines[start - 1].strip() and not re.match(
                    r"\s*(#|/\*|\*|//|}|;)", lines[start - 1]) and not lines[start - 1].rstrip().endswith(";"):
                start -= 1
            name = re.search(r"(\w+)\s*\(", "".join(lines[start:i]))
            start_name = (name.group(1) if name else "?", start)
        elif line.rstrip() == "}" and start is not None:
            yield start_name[0], start_name[1] + 1, i + 1
            start = None


def main(paths):
    bad = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if len(lines) > MAX_FILE:
            print(f"{path}: {len(lines)} lines (most {MAX_FILE})")
            bad += 1
        for name, first, last in functions(lines):
            if last - first + 1 > MAX_FUNC:
                print(f"{path}:{first}: {name}() is {last - first + 1} lines (most {MAX_FUNC})")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
