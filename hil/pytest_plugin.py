"""pytest plugin of mpy-hil (registered as the ``hil`` pytest11 entry point)."""
