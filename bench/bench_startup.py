"""Start-up time of the command line: `horses-humans --help` against importing Keras on TensorFlow (what every
command paid before the parser stopped importing it), in one run, interleaved, in fresh interpreters.

    python bench/bench_startup.py --rounds 5
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "horses-humans --help": [sys.executable, "-m", "horses_humans", "--help"],
    "horses-humans --version": [sys.executable, "-m", "horses_humans", "--version"],
    "reference: import keras (TensorFlow backend)": [sys.executable, "-c", "import keras"],
}


def seconds(command: list[str]) -> float:
    """Wall time of one fresh process."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):  # each round runs every command once: a noisy neighbour slows all alike
        for name, command in COMMANDS.items():
            times[name].append(seconds(command))
    reference = statistics.median(times["reference: import keras (TensorFlow backend)"])
    from horses_humans.core.tables import markdown_table

    rows = [
        [name, f"{statistics.median(t):.3f}", f"{reference / statistics.median(t):.1f}x"] for name, t in times.items()
    ]
    print(markdown_table(["command", "median s", "faster than importing Keras"], rows))


if __name__ == "__main__":
    main()
