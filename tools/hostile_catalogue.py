#!/usr/bin/env python3
"""Run the catalogue of hostile cases and print, per case, whether aslmig handles it.

A case is a broken dataset, a hostile option, string, file system or environment, or an
interrupted or repeated run. "Handled" means what the project's standards ask: a one-line
error (exit status 2) naming the file, the field and the fix, before anything is written,
and the input left byte-for-byte unchanged; or, for runs, a complete OUTPUT_DIR and no
process left behind. Each case is a parametrised test, so the catalogue is the test suite's
own list and cannot drift from it; this script only runs those tests and reports them as a
table.

Usage (from the repository root, with aslmig and its test extra installed)::

    python tools/hostile_catalogue.py            # the fast cases (about a minute)
    python tools/hostile_catalogue.py --slow     # also the end-to-end runs (several minutes)
    python tools/hostile_catalogue.py -k annex   # only the cases whose name matches

Exit status: 0 when every case is handled, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
#: Test modules (or single tests) whose cases make up the catalogue, by kind of case.
CATALOGUE: dict[str, str | tuple[str, ...]] = {
    "dataset": "tests/bids/test_broken_datasets.py::test_broken_dataset_is_refused",
    "option/file system": "tests/cli/test_hostile.py",
    "command line": "tests/cli/test_parsing.py",
    "configuration": "tests/test_config.py",
    "regions": "tests/atlas/test_rois.py::test_sphere_errors",
    "slurm scripts": "tests/hpc/test_slurm_scripts.py::test_bad_options_are_refused",
    "processes": "tests/cli/test_guards.py",
    "physics overrides": tuple(
        f"tests/cbf/test_constant_validation.py::{test}"
        for test in ("test_command_line_refuses", "test_configuration_file_refuses")
    ),
    "group level": tuple(
        f"tests/group/test_group_cli.py::{test}"
        for test in (
            "test_unknown_participant_label_says_no_such_participant",
            "test_tables_of_two_template_spaces_are_not_pooled",
            "test_truncated_table_and_infinite_value_are_exclusions",
        )
    ),
}
#: End-to-end cases (full participant runs): reruns, killed runs, a second launch.
SLOW_CATALOGUE: dict[str, str | tuple[str, ...]] = {"runs": "tests/cli/test_robustness.py"}


def _targets(kinds: dict[str, str | tuple[str, ...]]) -> dict[str, str]:
    """Each test target with its kind of case."""
    return {
        target: kind
        for kind, targets in kinds.items()
        for target in ((targets,) if isinstance(targets, str) else targets)
    }


class _Table:
    """Collect one outcome per test (its call phase, or the phase that failed first)."""

    def __init__(self, targets: dict[str, str]) -> None:
        self.kinds = {target.split("::")[0]: kind for target, kind in targets.items()}
        self.rows: dict[str, tuple[str, str, str]] = {}

    def pytest_runtest_logreport(self, report) -> None:  # noqa: D102 - pytest hook
        if report.when != "call" and report.passed:
            return
        path, _, name = report.nodeid.partition("::")
        case = name.split("[", 1)[1].rstrip("]") if "[" in name else name
        kind = self.kinds.get(path, path)
        if any(row[1:] == (kind, case) for key, row in self.rows.items() if key != report.nodeid):
            case = name  # the same case tried through another test: name the test too
        if report.passed:
            status, detail = "handled", ""
        elif report.skipped:
            status, detail = "skipped", str(report.longrepr[-1]) if report.longrepr else ""
        else:
            status = "UNHANDLED"
            lines = [line for line in str(report.longrepr).splitlines() if line.startswith("E ")]
            detail = lines[0][1:].strip() if lines else report.outcome
        self.rows.setdefault(report.nodeid, (status, kind, case))
        if status != "handled":  # a failure in teardown overrides a passed call
            self.rows[report.nodeid] = (status, kind, f"{case}  {detail}")

    def print(self) -> int:
        width = max((len(kind) for _, kind, _ in self.rows.values()), default=0)
        for status, kind, case in self.rows.values():
            print(f"{status:<10} {kind:<{width}}  {case}")
        counts = {status: 0 for status in ("handled", "UNHANDLED", "skipped")}
        for status, _, _ in self.rows.values():
            counts[status] += 1
        print(
            f"\n{len(self.rows)} cases: {counts['handled']} handled, "
            f"{counts['UNHANDLED']} unhandled, {counts['skipped']} skipped"
        )
        return 0 if counts["UNHANDLED"] == 0 and self.rows else 1


def main(argv: list[str] | None = None) -> int:
    """Run the catalogue; return 0 when every case is handled."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="add the end-to-end cases")
    parser.add_argument("-k", metavar="EXPRESSION", help="only cases matching (pytest -k)")
    args = parser.parse_args(argv)
    targets = _targets({**CATALOGUE, **(SLOW_CATALOGUE if args.slow else {})})
    table = _Table(targets)
    options = ["-q", "--no-header", "-p", "no:cacheprovider", "--tb=short", "-rN"]
    options += ["--capture=fd", "-o", "console_output_style=classic"]
    if args.k:
        options += ["-k", args.k]
    status = pytest.main(
        [*options, *[str(REPOSITORY / target) for target in targets]],
        plugins=[table],
    )
    print()
    result = table.print()
    return result if status in (0, 1, 5) else 1


if __name__ == "__main__":
    sys.exit(main())
