# A module whose body is "expensive": it prints a line and counts each execution of its body in
# a file on flash, so that a second execution would show even if the module object were new.
print("Loading expensive module...")

_RUNS = "expensive_module.runs"  # relative: "/" is not writable on every port (stm32: /flash)


def _count_execution():
    try:
        with open(_RUNS) as f:
            runs = int(f.read())
    except (OSError, ValueError):
        runs = 0
    with open(_RUNS, "w") as f:
        f.write(str(runs + 1))
    return runs + 1


executions = _count_execution()
data = [i * i for i in range(100)]  # stands for a huge dataset (small: a micro:bit has 8 kB)
