#!/usr/bin/env bash
# build.sh — build schemas/java with Maven, its dependencies cached outside the checkout
# ($LLMQ_CACHE/m2, LLMQ_CACHE defaulting to ~/.cache/llmq): compiles, runs the unit tests
# (every vector in schemas/vectors) unless given --no-tests, and writes target/classpath.txt
# (the runtime and test dependencies) for programs run against the built classes, such as
# tests/integration/test_java_client.py. Quiet unless something fails.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${LLMQ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmq}
command -v mvn >/dev/null || { echo "build.sh: mvn missing (deploy/local/deps.sh installs it)" >&2; exit 1; }
command -v javac >/dev/null || { echo "build.sh: javac missing: a JDK 17 is needed (deploy/local/deps.sh)" >&2; exit 1; }
goal=package
if [ "${1:-}" = "--no-tests" ]; then goal=test-compile; else rm -rf "$HERE/target/surefire-reports"; fi
# Debian's Maven 3.8 prints bare colour resets even in batch mode: drop them.
mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" -f "$HERE/pom.xml" \
  "$goal" dependency:build-classpath -Dmdep.outputFile="$HERE/target/classpath.txt" 2>&1 |
  sed 's/\x1b\[0m//g'
