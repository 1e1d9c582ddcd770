"""Root conftest: loads this suite's own fixtures (fixtures/) for the firmware under test."""

# firmware/ holds device-side code (its test_simple.py is a module for the board, not a test)
collect_ignore = ["firmware"]

pytest_plugins = ["fixtures.firmware"]
