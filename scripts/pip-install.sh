#!/usr/bin/env bash
# pip install with visible progress, sourced by demo.sh and test.sh: a first install takes minutes, and
# a silent terminal for that long reads as a hang. Prints one short line per package collected or
# built; hides "Requirement already satisfied" (a second run stays short); fails if pip fails.
#   pip_install -r requirements.txt -e .
pip_install() {
  local started=$SECONDS rc=0
  python -m pip install --disable-pip-version-check --progress-bar off "$@" 2>&1 | awk '
    /^Collecting /            { print "    collecting " $2; fflush(); next }
    /^Building /              { print "    " $0; fflush(); next }
    /^Installing collected /  { print "    installing..."; fflush(); next }
    /^Successfully installed/ { print "    installed " (NF - 2) " package(s)"; fflush(); next }
    /ERROR|[Ee]rror:/         { print; fflush() }' || rc=$?
  [ "$rc" -eq 0 ] || { echo "pip install failed (exit $rc); run it again without the filter to see why:"
                       echo "  python -m pip install $*"; return "$rc"; }
  echo "    packages ready ($((SECONDS - started)) s)"
}
