"""The Ray engine: extraction and exact nearest-neighbour search on a real two-node Ray cluster.

The module fixture starts a cluster on the loopback address (``ray start --head
--node-ip-address 127.0.0.1`` plus a second node joining it, one CPU each, a token of its own,
Ray's files under the test's temporary folder) and stops exactly the processes it started, by
pid. Nothing leaves this machine: the drivers connect to 127.0.0.1 (Ray registers the nodes
under the machine's own interface address, which Linux routes locally too).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.analysis.memorization import memorization_report
from workbench.analysis.neighbors import build_searcher, nearest_neighbors
from workbench.cache import extract, open_cache
from workbench.ray_cluster import check_address

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "tests" / "plugins"
VENV_BIN = Path(sys.executable).parent
RAY = VENV_BIN / "ray"
SLOW_DELAY = "0.25"  # seconds per batch of the slow-pixels extractor inside the cluster


# --------------------------------------------------------------------------- fast lane: arguments


def test_engine_arguments_are_checked(tmp_path):
    src = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="engine must be one of"):
        extract(src, "pixels", out=tmp_path, weights="none", engine="spark", progress=False)
    with pytest.raises(ValueError, match="only used with engine='ray'"):
        extract(src, "pixels", out=tmp_path, weights="none", ray_address="auto", progress=False)
    with pytest.raises(ValueError, match="exclude each other"):
        extract(src, "pixels", out=tmp_path, weights="none", engine="ray", shard="0/2", progress=False)
    with pytest.raises(ValueError, match="HOST:PORT"):
        extract(src, "pixels", out=tmp_path, weights="none", engine="ray", ray_address="/data/x", progress=False)
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="exact search only"):
        build_searcher(x, backend="faiss-ivf", engine="ray")
    with pytest.raises(ValueError, match="only used with engine='ray'"):
        nearest_neighbors(x, x, workers=2, progress=False)
    assert check_address(None) is None and check_address("auto") == "auto"
    assert check_address("10.0.0.5:6379") == "10.0.0.5:6379"


def test_missing_ray_names_the_extra(monkeypatch, tmp_path):
    from workbench import ray_cluster

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ImportError, match=r"workbench\[distributed\]"):
        ray_cluster.import_ray()
    with pytest.raises(ImportError, match="distributed"):
        nearest_neighbors(np.ones((5, 2)), np.ones((5, 2)), engine="ray", progress=False)


# --------------------------------------------------------------------------- the cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pids: list[int]) -> list[tuple[int, float]]:
    """(pid, create time) of every live descendant of ``pids``."""
    import psutil

    out = []
    for pid in pids:
        try:
            for child in psutil.Process(pid).children(recursive=True):
                try:
                    out.append((child.pid, child.create_time()))
                except psutil.NoSuchProcess:
                    continue
        except psutil.NoSuchProcess:
            continue
    return out


def _kill_recorded(procs: list[tuple[int, float]]) -> None:
    """SIGKILL the recorded processes that still run (the same process: same create time)."""
    import psutil

    for pid, created in procs:
        try:
            p = psutil.Process(pid)
            if p.create_time() == created:
                p.kill()
        except psutil.NoSuchProcess:
            continue


def _wait_for_line(log: Path, proc: subprocess.Popen, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise RuntimeError(f"ray start did not report {text!r}:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A two-node Ray cluster on 127.0.0.1 (one CPU per node); yields its address and environment."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (the `distributed` extra)")
    pytest.importorskip("psutil")

    base = tmp_path_factory.mktemp("ray")
    own_tmp = None
    if len(str(base)) > 48:  # Ray's socket paths under --temp-dir must stay below 108 characters
        own_tmp = base = Path(tempfile.mkdtemp(prefix="wbray-"))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(16),
        RAY_USAGE_STATS_ENABLED="0",
        # a loaded machine starts Ray's agents slowly: wait longer than Ray's defaults before giving up
        RAY_agent_register_timeout_ms="300000",
        RAY_raylet_start_wait_time_s="300",
        PYTHONPATH=os.pathsep.join([str(PLUGINS), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        SLOW_EXTRACTOR_DELAY=SLOW_DELAY,
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory", str(150 << 20)]
    common += ["--temp-dir", str(base / "t"), "--disable-usage-stats", "--block"]

    def agent_ports() -> list[str]:
        # fixed agent ports: with a port chosen by the agent, the raylet waits only 15 s for the agent
        # to report it and dies on a loaded machine
        out = []
        for flag in ("--dashboard-agent-grpc-port", "--dashboard-agent-listen-port", "--runtime-env-agent-port"):
            out += [flag, str(_free_port())]
        return out

    head_cmd = [str(RAY), "start", "--head", "--port", str(port), "--include-dashboard", "false", *common]
    head_cmd += agent_ports()
    node_cmd = [str(RAY), "start", "--address", address, *common, *agent_ports()]
    procs: list[subprocess.Popen] = []
    recorded: list[tuple[int, float]] = []
    driver_env = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    saved_env = {k: os.environ.get(k) for k in driver_env}
    try:
        head_log, node_log = base / "head.log", base / "node.log"
        with open(head_log, "wb") as out:
            procs.append(subprocess.Popen(head_cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
        _wait_for_line(head_log, procs[0], "Ray runtime started", 420)
        with open(node_log, "wb") as out:
            procs.append(subprocess.Popen(node_cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
        _wait_for_line(node_log, procs[1], "Ray runtime started", 420)
        # the drivers (this process, the CLI runs) use the same token and stay on the loopback address
        # (Ray otherwise swaps 127.0.0.1 for the machine's outward address when it connects)
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        for key in saved_env:
            os.environ[key] = env[key]
        import ray  # after the environment is set: Ray reads its settings on import

        ray.init(address=address, logging_level="WARNING")
        deadline = time.monotonic() + 60
        while sum(1 for n in ray.nodes() if n["Alive"]) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the second node did not join: {ray.nodes()}")
            time.sleep(0.5)
        print("cluster nodes:", [(n["NodeManagerAddress"], n["Alive"]) for n in ray.nodes()], file=sys.stderr)
        yield {"address": address, "env": env, "pids": [p.pid for p in procs]}
    finally:
        if "ray" in sys.modules and sys.modules["ray"].is_initialized():
            sys.modules["ray"].shutdown()
        recorded = _descendants([p.pid for p in procs])
        for p in reversed(procs):  # `ray start --block` stops its processes on SIGTERM
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        time.sleep(1)
        _kill_recorded(recorded)  # anything of ours that outlived its parent
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if own_tmp is not None:
            shutil.rmtree(own_tmp, ignore_errors=True)


def _write_images(folder: Path, n: int, *, corrupt: int | None = None, seed: int = 0) -> Path:
    """``n`` small RGB PNGs in two class folders; image ``corrupt`` (if any) is not a PNG."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = folder / ("cat" if i % 3 else "dog")
        sub.mkdir(parents=True, exist_ok=True)
        if i == corrupt:
            (sub / f"{i:04d}.png").write_bytes(b"not an image")
        else:
            Image.fromarray(rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)).save(sub / f"{i:04d}.png")
    return folder


def _assert_same_cache(ray_cache, local_cache) -> None:
    """Same rows, order, ids, labels, thumbnails; features within float rounding."""
    assert ray_cache.meta["id"].tolist() == local_cache.meta["id"].tolist()
    assert ray_cache.meta["index"].tolist() == local_cache.meta["index"].tolist()
    assert ray_cache.meta["label"].tolist() == local_cache.meta["label"].tolist()
    assert ray_cache.meta["content_hash"].tolist() == local_cache.meta["content_hash"].tolist()
    np.testing.assert_allclose(np.asarray(ray_cache.features), np.asarray(local_cache.features), rtol=1e-6, atol=1e-7)
    assert np.array_equal(np.asarray(ray_cache.thumbnails), np.asarray(local_cache.thumbnails))
    assert [s["id"] for s in ray_cache.skipped] == [s["id"] for s in local_cache.skipped]


@pytest.mark.slow
def test_python_extraction_equals_local_and_is_reused(cluster, tmp_path):
    src = _write_images(tmp_path / "imgs", 50, corrupt=7)
    local = extract(src, "pixels", weights="none", out=tmp_path / "local", progress=False)
    events = []
    got = extract(
        src,
        "pixels",
        weights="none",
        out=tmp_path / "ray",
        engine="ray",
        ray_address=cluster["address"],
        chunk_size=16,
        batch_size=8,
        progress=events.append,
    )
    _assert_same_cache(got, local)
    assert len(got) == 49 and got.manifest["shards"] == 4  # 50 images in shards of 16 -> 4 shards
    shard_dirs = sorted((got.path / "shards").iterdir())
    manifests = [open_cache(d).manifest for d in shard_dirs]
    assert {m["engine"] for m in manifests} == {"ray"} and local.manifest["engine"] == "local"
    assert set(got.manifest) - set(local.manifest) == {"shards"}  # the same fields, plus the shard count
    assert [m["shard"]["start"] for m in manifests] == [0, 12, 25, 37]
    assert got.manifest["extractor"] == local.manifest["extractor"]
    # progress on the driver: images and shards
    bar = [e for e in events if e.task == "extract pixels (ray)"]
    assert any("4/4 shards written" in e.message for e in bar) and bar[-1].done == bar[-1].total == 50

    # the same shards as `--shard I/4` runs of the local engine: a local shard run reuses the ray shard
    again = extract(src, "pixels", weights="none", out=tmp_path / "ray", shard="2/4", progress=False)
    assert again.manifest["key"] == manifests[2]["key"] and again.manifest["engine"] == "ray"

    # a second run with the ray engine reuses every shard (nothing rewritten)
    stamps = [(d / "features.npy").stat().st_mtime_ns for d in shard_dirs]
    messages = []
    extract(
        src,
        "pixels",
        weights="none",
        out=tmp_path / "ray",
        engine="ray",
        ray_address=cluster["address"],
        chunk_size=16,
        progress=lambda e: messages.append(e.message),
    )
    assert [(d / "features.npy").stat().st_mtime_ns for d in shard_dirs] == stamps
    assert sum("reusing cache" in m for m in messages) == 4


def _cli(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [str(VENV_BIN / "workbench"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.slow
def test_cli_extraction_on_the_cluster(cluster, tmp_path):
    src = _write_images(tmp_path / "imgs", 30, seed=1)
    proc = _cli(
        [
            "extract", str(src), "-e", "pixels", "-w", "none", "-o", str(tmp_path / "ws"),
            "--chunk-size", "10", "--batch-size", "5", "--workers", "1", "--ray", cluster["address"],
        ],
        cluster["env"],
    )  # fmt: skip
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    cache = open_cache(out.strip().splitlines()[-1])
    _assert_same_cache(cache, extract(src, "pixels", weights="none", out=tmp_path / "local", progress=False))
    assert cache.manifest["shards"] == 3
    assert "3/3 shards written" in err and "img" in err  # progress lines on the driver's stderr

    bad = _cli(
        ["extract", str(src), "-e", "pixels", "-w", "none", "-o", str(tmp_path / "x"), "--ray", "nowhere"],
        cluster["env"],
    )
    _, err = bad.communicate(timeout=120)
    assert bad.returncode == 2 and "HOST:PORT" in err


def _model_worker_pids(cluster) -> list[int]:
    """Pids of the cluster's processes that run a model actor of the extraction pipeline."""
    import psutil

    found = []
    for pid, _created in _descendants(cluster["pids"]):
        try:
            title = " ".join(psutil.Process(pid).cmdline())
        except psutil.NoSuchProcess:
            continue
        if "_ModelWorker" in title:
            found.append(pid)
    return found


@pytest.mark.slow
def test_killed_worker_is_retried_and_every_row_is_kept_once(cluster, tmp_path):
    src = _write_images(tmp_path / "imgs", 96, seed=2)
    out = tmp_path / "ws"
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["cache"] = extract(
                src,
                "slow_extractor:create",
                weights="none",
                out=out,
                engine="ray",
                ray_address=cluster["address"],
                chunk_size=16,
                batch_size=4,
                progress=False,
            )
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    killed = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and worker.is_alive():
            pids = _model_worker_pids(cluster)
            done = list(out.glob("*/shards/*/manifest.json"))
            if pids and done:  # mid-run: a shard is written, others are not
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.2)
        assert killed is not None, "the extraction ended before a model actor could be killed"
        assert len(list(out.glob("*/shards/*/manifest.json"))) < 6  # killed before the end
    finally:
        worker.join(timeout=600)
    assert "error" not in result, result.get("error")
    cache = result["cache"]
    assert cache.meta["index"].tolist() == list(range(96))  # every row, once, in order
    assert cache.meta["id"].is_unique
    from slow_extractor import create  # the same features from the local engine

    local = extract(src, create(weights="none"), out=tmp_path / "local", progress=False)
    _assert_same_cache(cache, local)


@pytest.mark.slow
def test_rerun_after_the_driver_is_killed_skips_finished_shards(cluster, tmp_path):
    src = _write_images(tmp_path / "imgs", 96, seed=3)
    out = tmp_path / "ws"
    args = ["extract", str(src), "-e", "slow_extractor:create", "-w", "none", "-o", str(out)]
    args += ["--chunk-size", "16", "--batch-size", "4", "--ray", cluster["address"]]
    driver = _cli(args, cluster["env"])
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and driver.poll() is None:
            if len(list(out.glob("*/shards/*/manifest.json"))) >= 1:
                break
            time.sleep(0.2)
    finally:
        if driver.poll() is None:
            driver.kill()  # the driver dies mid-run
        driver.communicate(timeout=60)
    finished = sorted(p.parent for p in out.glob("*/shards/*/manifest.json"))
    assert 1 <= len(finished) < 6, "the driver was not killed mid-run"
    stamps = {d: (d / "manifest.json").stat().st_mtime_ns for d in finished}

    again = _cli(args, cluster["env"])
    stdout, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert f"resuming: {len(finished)} of 6 shards" in err
    assert all((d / "manifest.json").stat().st_mtime_ns == t for d, t in stamps.items())  # not redone
    cache = open_cache(stdout.strip().splitlines()[-1])
    assert cache.meta["index"].tolist() == list(range(96))
    from slow_extractor import create

    _assert_same_cache(cache, extract(src, create(weights="none"), out=tmp_path / "local", progress=False))


@pytest.mark.slow
def test_search_on_the_cluster_equals_local(cluster, tmp_path):
    rng = np.random.default_rng(4)
    # a sharded training cache: the workers read their rows from its memory-mapped shard files
    train_src = _write_images(tmp_path / "train", 60, seed=5)
    train = extract(
        train_src,
        "pixels",
        weights="none",
        out=tmp_path / "ws",
        engine="ray",
        ray_address=cluster["address"],
        chunk_size=25,
        progress=False,
    )
    assert train.manifest["shards"] == 3
    fake = np.asarray(train.features)[:8] + rng.normal(scale=1e-3, size=(8, train.features.shape[1]))
    fake = np.vstack([fake, rng.normal(size=(12, train.features.shape[1]))]).astype(np.float32)
    for metric in ("l2", "cosine"):
        local = nearest_neighbors(fake, train, k=4, metric=metric, progress=False)
        dist = nearest_neighbors(
            fake, train, k=4, metric=metric, engine="ray", ray_address=cluster["address"], workers=2, progress=False
        )
        assert np.array_equal(dist.indices, local.indices)
        np.testing.assert_allclose(dist.distances, local.distances, rtol=1e-12, atol=0)
        assert dist.params["workers"] == 2
    # exclude_self over an in-memory array (shipped through the object store), 3 parts for 2 CPUs
    x = rng.normal(size=(300, 6))
    local = nearest_neighbors(x, x, k=3, exclude_self=True, progress=False)
    dist = nearest_neighbors(
        x, x, k=3, exclude_self=True, engine="ray", ray_address=cluster["address"], workers=3, progress=False
    )
    assert np.array_equal(dist.indices, local.indices)
    np.testing.assert_allclose(dist.distances, local.distances, rtol=1e-12, atol=0)
    assert not np.any(dist.indices == np.arange(300)[:, None])

    test = rng.normal(size=(15, train.features.shape[1])).astype(np.float32)
    rep_local = memorization_report(train, fake, test, k=2, progress=False)
    rep_ray = memorization_report(
        train, fake, test, k=2, engine="ray", ray_address=cluster["address"], workers=2, progress=False
    )
    assert rep_ray.tables["samples"].equals(rep_local.tables["samples"])
    assert rep_ray.tables["test"].equals(rep_local.tables["test"])
    assert rep_ray.n_flagged == rep_local.n_flagged >= 8
