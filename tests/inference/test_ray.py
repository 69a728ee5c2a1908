"""`predict --engine ray`: the Ray Data pipeline gives the single-machine path's rows, row for row, on a local Ray.

One Ray instance for the module (2 CPUs, no dashboard): rayengine reuses a running Ray, so its start-up is paid once.
"""

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from horses_humans.cli.main import main
from horses_humans.data.samples import awkward_files, hostile_files

from ..centroid_runs import centroid_setup, write_centroid_run
from ..live_server import free_port
from ..tiers import slow_fixture

REPO = Path(__file__).resolve().parents[2]
FLOATS = ("probability", "unsure_score")


@pytest.fixture(scope="module")
@slow_fixture
def local_ray():
    """A local Ray for the whole module (rayengine connects to it instead of starting its own)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    # workers are fresh processes: they find this checkout's package through an absolute PYTHONPATH
    env = {"PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def centroid(tmp_path_factory):
    """(run dir, data dir): the tiny nearest-colour run and its synthetic images."""
    return centroid_setup(tmp_path_factory.mktemp("centroid"), 2)


def read_rows(path: Path) -> list[dict]:
    """A CSV's rows, as written (no newline translation)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_same_rows(ray_rows: list[dict], local_rows: list[dict], tolerance: float = 1e-6) -> None:
    """Same files in the same order, same labels and errors, every probability within `tolerance` (a CSV holds 4
    decimals: rows both CSVs wrote are equal; Parquet's full numbers are within 5e-5 of them)."""
    assert [r["file"] for r in ray_rows] == [r["file"] for r in local_rows]
    for got, want in zip(ray_rows, local_rows):
        assert list(got) == list(want), got["file"]
        for column in got:
            if column in FLOATS or column.startswith("p_"):
                assert (got[column] == "") == (want[column] == ""), (got["file"], column)
                if got[column]:
                    assert abs(float(got[column]) - float(want[column])) <= tolerance, (got["file"], column)
            else:
                assert got[column] == want[column], (got["file"], column)


def predict_both(run: Path, inputs: list[Path], out: Path, capsys, *extra: str):
    """Run `predict` locally (CSV) and on Ray into out/; return ((exit code, stderr, csv path) for each)."""
    answers = []
    for engine in ("local", "ray"):
        target = out / f"{engine}.csv"
        code = main(
            ["predict", str(run), *map(str, inputs), "--csv", "--output", str(target), "--engine", engine, *extra]
        )
        answers.append((code, capsys.readouterr().err, target))
    return answers


def test_ray_rows_equal_the_local_rows_with_bad_files_as_error_rows(local_ray, centroid, tmp_path, capsys):
    run, data = centroid
    bad = tmp_path / "bad"
    (bad / "deep").mkdir(parents=True)
    for name, (content, _) in hostile_files().items():
        (bad / name).write_bytes(content)
    for name, content in awkward_files().items():
        (bad / "deep" / name).write_bytes(content)
    (bad / ".hidden.png").write_bytes(b"skipped by the walk")
    inputs = [data, bad, tmp_path / "missing.png"]  # a missing file named directly is an error row, not a crash
    (local_code, local_err, local_csv), (ray_code, ray_err, ray_csv) = predict_both(run, inputs, tmp_path, capsys)
    local_rows, ray_rows = read_rows(local_csv), read_rows(ray_csv)
    assert_same_rows(ray_rows, local_rows)
    assert ray_csv.read_bytes() == local_csv.read_bytes()  # the same model in the same process kind: the same text
    assert ray_code == local_code == 0 and ray_err.splitlines()[-1] == local_err.splitlines()[-1]
    # a walked folder's files that are not images by name (notes.txt, drawing.svg, archive.zip, wrong-extension.txt,
    # .hidden.png) are passed over on both engines and counted in the summary line, which is the same
    not_images = [n for n in [*hostile_files(), *awkward_files()] if not n.endswith((".png", ".jpg", ".gif"))]
    assert len(ray_rows) == 1 + len(hostile_files()) + len(awkward_files()) - len(not_images) + 16
    assert sum(bool(r["error"]) for r in ray_rows) == len(hostile_files()) - 3 + 1
    assert ray_err.splitlines()[-1].endswith(f"; {len(not_images) + 1} files skipped: not images")
    assert "Traceback" not in ray_err and ".hidden.png" not in ray_csv.read_text()


def test_decoding_runs_in_tasks_and_the_model_on_actors(local_ray, centroid):
    """Two operators, not one: Ray fuses a task stage into the next actor stage when their resources match, and
    then every image would be decoded inside the model actors, one at a time."""
    from horses_humans.inference.predictor import collect_files
    from horses_humans.inference.rayengine import RayPredict, build_dataset, stream_rows

    run, data = centroid
    ds = build_dataset(local_ray, collect_files([data]), RayPredict(run, [data], workers=2, batch_size=4))
    assert len(list(stream_rows(ds))) == 16
    stats = ds.stats()
    assert "Operator 1 MapBatches(decode_batch):" in stats and "Operator 2 MapBatches(RunModel):" in stats, stats


def test_parquet_output_holds_the_local_rows_and_strict_fails_on_a_bad_file(local_ray, centroid, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    run, data = centroid
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    inputs = [str(data / "validation-horse-or-human"), str(notes)]
    assert (
        main(["predict", str(run), *inputs, "--engine", "ray", "--output", str(tmp_path / "p.parquet"), "--strict"])
        == 1
    )
    assert "predicted 4 of 5 files (1 skipped)" in capsys.readouterr().err  # the file is written all the same
    assert main(["predict", str(run), *inputs, "--csv", "--output", str(tmp_path / "local.csv")]) == 0
    parquet = pq.read_table(tmp_path / "p.parquet").to_pylist()
    table = [{k: "" if v is None else str(v) for k, v in row.items()} for row in parquet]  # as the CSV writes them
    assert_same_rows(table, read_rows(tmp_path / "local.csv"), tolerance=5e-5)
    assert len(table) == 5 and table[-1]["error"].startswith(str(notes)) and table[-1]["probability"] == ""


def test_csv_to_stdout_and_nothing_to_predict(local_ray, centroid, tmp_path, capsys):
    run, data = centroid
    image = next((data / "validation-horse-or-human" / "humans").iterdir())
    assert main(["predict", str(run), str(image), "--engine", "ray"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["file"], r["label"]) for r in rows] == [(str(image), "humans")]
    (tmp_path / "empty").mkdir()
    assert (
        main(["predict", str(run), str(tmp_path / "empty"), "--engine", "ray", "--output", str(tmp_path / "e.csv")])
        == 1
    )
    assert read_rows(tmp_path / "e.csv") == [] and (tmp_path / "e.csv").read_text().startswith("file,label,")


def test_ray_writes_the_local_writers_formats_and_says_which_model_answered(local_ray, centroid, tmp_path, capsys):
    """One writer: JSON Lines from Ray are the local rows (the model field included); Parquet keeps the stamp in its
    schema metadata, a CSV in its sidecar."""
    pq = pytest.importorskip("pyarrow.parquet")
    run, data = centroid
    rows = {}
    for engine in ("local", "ray"):
        assert (
            main(["predict", str(run), str(data), "--output", str(tmp_path / f"{engine}.jsonl"), "--engine", engine])
            == 0
        )
        rows[engine] = [json.loads(line) for line in (tmp_path / f"{engine}.jsonl").read_text().splitlines()]
    stamp = {"run": run.name, "checkpoint": "model.keras", "runtime": "keras"}
    assert [r["file"] for r in rows["ray"]] == [r["file"] for r in rows["local"]] and len(rows["ray"]) == 16
    assert all(r["model"] == stamp for r in rows["ray"] + rows["local"])
    assert [r["label"] for r in rows["ray"]] == [r["label"] for r in rows["local"]]
    assert main(["predict", str(run), str(data), "--engine", "ray", "--output", str(tmp_path / "p.parquet")]) == 0
    metadata = pq.read_schema(tmp_path / "p.parquet").metadata
    assert json.loads(metadata[b"horses_humans.model"]) == stamp
    assert main(["predict", str(run), str(data), "--engine", "ray", "--output", str(tmp_path / "r.csv")]) == 0
    assert json.loads((tmp_path / "r.csv.meta.json").read_text())["model"] == stamp


def test_a_name_that_is_not_utf8_gives_the_local_csv_on_ray(local_ray, centroid, tmp_path, capsys):
    """Latin-1 bytes in a file name: Arrow strings must be UTF-8, so the actor escapes them as the CSV does."""
    run, data = centroid
    odd = tmp_path / "odd"
    odd.mkdir()
    image = next((data / "validation-horse-or-human" / "humans").iterdir())
    shutil.copyfile(image, os.fsdecode(bytes(odd) + b"/caf\xe9.png"))
    (odd / "notes.txt").write_text("not an image")  # passed over beside it
    (local_code, _, local_csv), (ray_code, ray_err, ray_csv) = predict_both(run, [odd], tmp_path, capsys)
    assert ray_code == local_code == 0 and "Traceback" not in ray_err
    assert ray_csv.read_bytes() == local_csv.read_bytes() and b"caf\\xe9.png" in ray_csv.read_bytes()


def test_ray_refuses_images_over_the_pixel_limit_as_error_rows(local_ray, centroid, tmp_path, capsys):
    run, data = centroid
    image = next((data / "validation-horse-or-human" / "humans").iterdir())
    assert main(["predict", str(run), str(image), "--engine", "ray", "--max-pixels", "100"]) == 1
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["error"].startswith(f"{image}: ") and "over the limit of 100 (predict --max-pixels" in row["error"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--engine", "ray", "--output", "out.txt"], "--output out.txt: --engine ray writes .csv, .jsonl, "),
        (["--engine", "ray", "--format", "csv", "--output", "o.parquet"], "--output o.parquet: a .parquet file"),
        (["--engine", "ray", "--resume", "--output", "o.csv"], "--resume: --engine ray writes its output whole"),
        (["--address", "127.0.0.1:6379"], "--address 127.0.0.1:6379: a cluster address needs --engine ray"),
    ],
)
def test_bad_options_are_one_line_errors_before_ray_starts(centroid, capsys, argv, message):
    run, data = centroid
    assert main(["predict", str(run), str(data), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1


def test_an_address_nobody_listens_on_is_refused_at_once(centroid, capsys):
    """The fault itself: a port with no Ray head (ray.init alone would retry it for minutes)."""
    pytest.importorskip("ray")
    port = free_port()
    run, data = centroid
    assert main(["predict", str(run), str(data), "--engine", "ray", "--address", f"127.0.0.1:{port}"]) == 2
    assert f"error: --address 127.0.0.1:{port}: nothing listens there" in capsys.readouterr().err


def wait_for_port(port: int, process: subprocess.Popen, deadline: float) -> None:
    """Until something accepts on 127.0.0.1:port; fails if the process dies first or the deadline passes."""
    while time.monotonic() < deadline:
        assert process.poll() is None, f"`ray start --head` exited with {process.returncode}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"no Ray head listening on port {port} in time")


@pytest.mark.slow
def test_an_existing_cluster_at_address(centroid, tmp_path):
    """`ray start --head` in its own process group, then the CLI in another process with --address; the head is
    stopped by signalling its group (never `ray stop`: that ends every Ray on the machine)."""
    pytest.importorskip("ray")
    run, data = centroid
    port, ray_cli = free_port(), Path(sys.executable).with_name("ray")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short (Ray's socket paths) and ours: its current-cluster
    # file stays out of /tmp/ray, where a later plain ray.init() would try to join this head after it is gone
    head = subprocess.Popen(
        [
            str(ray_cli),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=1",
            f"--temp-dir={temp}",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, head, deadline=time.monotonic() + 180)  # the head listens only after its start-up
        argv = [
            sys.executable,
            "-m",
            "horses_humans",
            "predict",
            str(run),
            str(data),
            "--engine",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
            "--output",
            str(tmp_path / "cluster.csv"),
        ]
        # the head's token authentication (Ray's default for `ray start`): the driver must speak it too
        result = subprocess.run(
            argv, env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the whole group at once: SIGTERM makes the head drain for 30 s
        head.wait(timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(read_rows(tmp_path / "cluster.csv")) == 16 and "predicted 16 of 16 files" in result.stderr


def test_without_ray_the_engine_says_how_to_install_it(centroid, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the [ray] extra sees: ImportError
    run, data = centroid
    assert main(["predict", str(run), str(data), "--engine", "ray"]) == 2
    assert (
        capsys.readouterr().err == "error: --engine ray needs Ray Data: pip install 'horses-humans[ray]' "
        "(or pass --engine local).\n"
    )


def test_a_model_the_workers_cannot_load_is_one_line(local_ray, centroid, tmp_path, capsys):
    """The fault where it happens: the run's model file damaged, so every actor fails to build its predictor."""
    run, data = centroid
    broken = tmp_path / "broken-run"
    shutil.copytree(run, broken)
    (broken / "model.keras").write_bytes(b"not a zip")
    assert main(["predict", str(broken), str(data), "--engine", "ray", "--output", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: {broken / 'model.keras'}: cannot load the model") and len(err.strip().splitlines()) == 1
    )
    assert not (tmp_path / "x.csv").exists()  # atomic: no half-written output


@pytest.mark.slow
def test_a_one_cpu_instance_finishes(centroid, tmp_path):
    """The job's own local Ray with one CPU (in a fresh process: this module's Ray has two) must not wait forever
    for a CPU held by the model actor; the deadline turns a hang into a failure."""
    pytest.importorskip("ray")
    run, data = centroid
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from horses_humans.inference.rayengine import RayPredict, predict_with_ray\n"
        "print(predict_with_ray(RayPredict(Path(sys.argv[1]), [Path(sys.argv[2])], Path(sys.argv[3]), workers=1))[0])"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(run), str(data), str(tmp_path / "one.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "16" and len(read_rows(tmp_path / "one.csv")) == 16


def test_the_base_import_path_never_imports_ray():
    code = (
        "import sys\nimport horses_humans.cli.main, horses_humans.inference.predictor, horses_humans.serve.app\n"
        "horses_humans.cli.main.build_parser()\nprint('ray' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.integration
def test_ray_rows_equal_the_local_rows_on_the_validation_set(local_ray, tmp_path, capsys):
    """The real validation set (256 300x300 RGBA PNGs) through a 150 px centroid run, on both engines."""
    data = Path(os.environ.get("HORSES_HUMANS_DATA") or REPO.parent / "shared" / "data") / "validation-horse-or-human"
    assert data.is_dir(), f"integration tests need the real data set at {data.parent} (or HORSES_HUMANS_DATA)"
    run = write_centroid_run(tmp_path / "runs", 2, image_size=150)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "truncated.png").write_bytes(next((data / "horses").iterdir()).read_bytes()[:500])
    inputs = [data, tmp_path / "extra"]
    (local_code, _, local_csv), (ray_code, ray_err, ray_csv) = predict_both(run, inputs, tmp_path, capsys)
    ray_rows = read_rows(ray_csv)
    assert_same_rows(ray_rows, read_rows(local_csv))
    assert len(ray_rows) == 257 and ray_rows[-1]["error"] and local_code == ray_code == 0
    assert "predicted 256 of 257 files (1 skipped)" in ray_err
