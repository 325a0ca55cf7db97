from __future__ import annotations

# Figures of the fuzz runs, printed at the end of the session whatever pytest's verbosity.
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("OpenAPI fuzz (schemathesis)")
        for line in FIGURES:
            terminalreporter.write_line(line)
