"""pytest plugin for running redis-py's own test suite against a Conclave node.

Loaded by scripts/redis-py-suite.sh with ``-p conclave_exclusions``. It reads
``exclusions.txt`` (beside this file, or the path in ``$CONCLAVE_EXCLUSIONS``) and
marks each listed test ``xfail`` with the reason of its section, so a run reports
what is expected not to pass apart from real failures:

* ``[excluded] <reason>``: the test needs something Conclave does not offer (a data
  type, ACL users, a replica, a second database). Not run; counted as excluded.
* ``[pending] <reason>``: waits for work on another branch. Run; counted as pending
  while it fails and reported as XPASS once it passes (then delete its line).
* ``[port6379] <reason>``: the test builds its own client for localhost:6379. Run;
  expected to fail unless the node under test listens on port 6379.

At the end it prints one line per outcome and per reason, and a closing line
``conclave: N passed, N failed, N skipped`` (skipped = version-gated by the suite).
"""

import os
from collections import Counter
from urllib.parse import urlparse

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load(path):
    """{test id without 'tests/': (mode, reason)} from the exclusions file."""
    table = {}
    mode, reason = None, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                mode, _, reason = line[1:].partition("]")
                mode, reason = mode.strip(), reason.strip()
                if mode not in ("excluded", "pending", "port6379"):
                    raise ValueError(f"{path}: unknown section mode {mode!r}")
                continue
            if mode is None:
                raise ValueError(f"{path}: test id before any section: {line}")
            table[line] = (mode, reason)
    return table


def pytest_collection_modifyitems(config, items):
    path = os.environ.get("CONCLAVE_EXCLUSIONS", os.path.join(_HERE, "exclusions.txt"))
    table = _load(path)
    port = urlparse(config.getoption("--redis-url")).port
    seen = set()
    for item in items:
        test_id = item.nodeid.split("[", 1)[0]
        test_id = test_id[len("tests/"):] if test_id.startswith("tests/") else test_id
        entry = table.get(test_id)
        if entry is None:
            continue
        seen.add(test_id)
        mode, reason = entry
        if mode == "excluded":
            item.add_marker(pytest.mark.xfail(run=False, reason=f"excluded: {reason}"))
        elif mode == "pending":
            item.add_marker(pytest.mark.xfail(reason=f"pending: {reason}", strict=False))
        elif port != 6379:
            item.add_marker(pytest.mark.xfail(reason=f"port6379: {reason}", strict=False))
    config._conclave_unmatched = sorted(set(table) - seen)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats
    tr = terminalreporter
    tr.section("conclave")
    reasons = Counter()
    for rep in stats.get("xfailed", []):
        reason = getattr(rep, "wasxfail", "").removeprefix("[NOTRUN] ")
        reasons[reason or "redis-py's own xfail"] += 1
    for reason, n in sorted(reasons.items()):
        tr.write_line(f"{n:4d} xfail  {reason}")
    for rep in stats.get("xpassed", []):
        tr.write_line(f"   XPASS {rep.nodeid} ({getattr(rep, 'wasxfail', '')})")
    unmatched = getattr(config, "_conclave_unmatched", [])
    if unmatched:
        tr.write_line(f"exclusions.txt lines matching no collected test: {unmatched}")

    def count(key):
        return len(stats.get(key, []))

    excluded = sum(n for r, n in reasons.items() if r.startswith("excluded:"))
    pending = sum(n for r, n in reasons.items() if r.startswith("pending:"))
    port6379 = sum(n for r, n in reasons.items() if r.startswith("port6379:"))
    other = sum(reasons.values()) - excluded - pending - port6379
    tr.write_line(
        f"conclave: excluded {excluded}, pending {pending}, port6379 {port6379}, "
        f"redis-py's own xfail {other}, "
        f"xpassed {count('xpassed')}, errors {count('error')}, "
        f"deselected by marker {count('deselected')}"
    )
    tr.write_line(
        f"conclave: {count('passed')} passed, {count('failed') + count('error')} failed, "
        f"{count('skipped')} skipped"
    )
