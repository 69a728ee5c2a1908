import os
import stat

import pytest

from horses_humans.core.atomic import atomic_path, write_json_atomic


def test_atomic_write_replaces_whole_file_with_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_json_atomic(target, {"x": 1})
    assert target.read_text() == '{\n  "x": 1\n}\n'
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


QUIET = """
import os, sys
from horses_humans.core.backend import quiet_native_stderr
with quiet_native_stderr():
    os.write(2, b"native chatter\\n")
    print("our progress line", file=sys.stderr)
print("after", file=sys.stderr)
os.write(2, b"native after\\n")
"""


@pytest.mark.parametrize("verbose", ["", "1"])
def test_quiet_native_stderr_hides_only_what_bypasses_python(verbose):
    import subprocess
    import sys

    env = {**os.environ, "HORSES_HUMANS_VERBOSE": verbose}
    err = subprocess.run([sys.executable, "-c", QUIET], capture_output=True, text=True, env=env, check=True).stderr
    expected = ["our progress line", "after", "native after"]
    assert err.splitlines() == (["native chatter"] + expected if verbose else expected)


LOGGER_MADE_INSIDE = """
import logging, sys
from horses_humans.core.backend import quiet_native_stderr
with quiet_native_stderr():  # as TensorFlow's import makes its logger's handler on the sys.stderr of the moment
    logger = logging.getLogger("made-inside")
    logger.addHandler(logging.StreamHandler(sys.stderr))
logger.warning("a warning after the block")
"""


def test_a_log_handler_made_inside_the_block_still_writes_after_it():
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HORSES_HUMANS_VERBOSE"}
    err = subprocess.run(
        [sys.executable, "-c", LOGGER_MADE_INSIDE], capture_output=True, text=True, env=env, check=True
    ).stderr
    assert err.splitlines() == ["a warning after the block"]  # not '--- Logging error --- ... closed file'
