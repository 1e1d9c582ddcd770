"""Allure reporting of HIL runs: REPL exchanges as steps, transcripts, board labels, per-run files.

What the pytest plugin calls:

* in a test (its thread): ``exchange_step`` after each REPL exchange, ``attach_transcript`` once
  the test is over, ``label_board`` when a board is leased for the test;
* in ``pytest_sessionfinish`` of the controller only (``not is_xdist_worker(config)``):
  ``write_categories`` and ``write_environment(environment_properties(...))`` into
  ``results_dir(config)``;
* ``hil report`` (``render``) turns the results into HTML with Allure 3.

All test-time helpers are no-ops when Allure does not record the run (no ``--alluredir``).
"""

from hil.report.render import ReportError, find_tooling, render
from hil.report.results import (
    CATEGORIES,
    environment_properties,
    is_xdist_worker,
    results_dir,
    write_categories,
    write_environment,
)
from hil.report.steps import (
    REPL_NAME,
    WIRE_NAME,
    attach_transcript,
    exchange_step,
    is_active,
    label_board,
    label_group,
    readable,
)

__all__ = [
    "CATEGORIES",
    "REPL_NAME",
    "WIRE_NAME",
    "ReportError",
    "attach_transcript",
    "environment_properties",
    "exchange_step",
    "find_tooling",
    "is_active",
    "is_xdist_worker",
    "label_board",
    "label_group",
    "readable",
    "render",
    "results_dir",
    "write_categories",
    "write_environment",
]
