"""Print the container figures (size, build and run times) at the end of every test run."""

from __future__ import annotations

from podman_image import FIGURES


def pytest_terminal_summary(terminalreporter) -> None:
    """Show what the container tests measured, even when their output is captured."""
    if FIGURES:
        terminalreporter.section("container image")
        for line in FIGURES:
            terminalreporter.write_line(line)
