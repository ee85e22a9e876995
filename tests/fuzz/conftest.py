"""Counters of the fuzz tests, printed at the end of the session.

The issue asks for at least 2,000 generated configs per CI run; the
summary line says how many ran and how, so that a run can be checked.
"""

from fuzzgen import COUNTS, SECONDS


def pytest_terminal_summary(terminalreporter):
    if not any(COUNTS.values()):
        return
    parts = [f"{n} {kind} ({SECONDS[kind]:.0f}s)"
             for kind, n in COUNTS.items() if n]
    terminalreporter.write_line(
        "fuzz: generated cases run: " + ", ".join(parts)
        + f"; configs in total: {COUNTS['in-process'] + COUNTS['end-to-end']}")
