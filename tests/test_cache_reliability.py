"""Nothing lost, nothing silent: extraction and caches under real-world mishaps.

Each test is one row of issue 12's table: a smaller request after a finished cache, two writers
at once, kill -9 mid-run, damaged chunks, a truncated finished cache, changed images, labels,
a full or read-only disk (on a real tmpfs where this machine may mount one), bad devices,
weights and options, and one-line CLI errors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.cache import CacheError, extract, open_cache
from workbench.cache.extraction import LimitMissesClassesWarning
from workbench.cli import main
from workbench.extractors import create_extractor

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "tests" / "plugins"


def _run_cli(args: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": f"{PLUGINS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def tmpfs(tmp_path: Path):
    """Mount a tmpfs of a given size (and options); skipped where this machine may not mount."""
    mounted: list[Path] = []

    def mount(size: str, options: str = "") -> Path:
        where = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
        where.mkdir()
        opts = f"size={size}" + (f",{options}" if options else "")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or 'not permitted'})")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _slow_extract_args(source: Path, ws: Path, *extra: str) -> list[str]:
    """``workbench extract`` arguments for the slow test extractor: 10-image chunks, 5-image batches."""
    return [
        "extract",
        str(source),
        "-e",
        "slow_extractor:create",
        "-o",
        str(ws),
        "--chunk-size",
        "10",
        "-b",
        "5",
        "--workers",
        "0",
        *extra,
    ]


def _wait_for_chunk(ws: Path, proc: subprocess.Popen, count: int = 1, timeout: float = 120) -> list[Path]:
    """Wait until the extraction ``proc`` has finished ``count`` chunks; returns their markers."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        markers = sorted(ws.glob("*/_partial/chunk-*.json"))
        if len(markers) >= count:
            return markers
        if proc.poll() is not None:
            raise AssertionError(f"the extraction ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("the extraction wrote no chunk in time")


# --- a smaller request never replaces finished work -------------------------------------------


def test_limit_run_keeps_the_finished_cache(tmp_path: Path, class_folder: Path, capsys) -> None:
    ws = tmp_path / "ws"
    full = extract(class_folder, "pixels", out=ws, progress=False)
    stamp = (full.path / "features.npy").stat().st_mtime_ns
    with pytest.warns(
        LimitMissesClassesWarning,
        match=r"--limit 20 keeps the first 20 images in path order, which hold 1 of its 3 classes \(none of ",
    ):
        small = extract(class_folder, "pixels", out=ws, limit=20, progress=False)
    assert small.path != full.path and len(small) == 20
    assert small.manifest["options"] == {"limit": 20}
    np.testing.assert_array_equal(small.features, full.features[:20])
    again = open_cache(full.path)
    assert len(again) == 60 and (full.path / "features.npy").stat().st_mtime_ns == stamp
    with warnings.catch_warnings():
        warnings.simplefilter("error", LimitMissesClassesWarning)  # 45 images reach all 3 classes: no warning
        assert len(extract(class_folder, "pixels", out=ws, limit=45, progress=False)) == 45
    # a limit that covers the whole source is the same request as no limit: reused
    same = extract(class_folder, "pixels", out=ws, limit=500, progress=True)
    assert same.path == full.path and "reusing cache" in capsys.readouterr().err


def test_labels_none_gets_its_own_cache(tmp_path: Path, class_folder: Path) -> None:
    ws = tmp_path / "ws"
    labelled = extract(class_folder, "pixels", out=ws, progress=False)
    unlabelled = extract(class_folder, "pixels", out=ws, labels="none", progress=False)
    assert unlabelled.path != labelled.path
    assert unlabelled.labels is None and labelled.labels is not None
    assert open_cache(labelled.path).labels is not None
    thumbless = extract(class_folder, "pixels", out=ws, thumbnails=0, progress=False)
    assert thumbless.path not in (labelled.path, unlabelled.path) and thumbless.thumbnails is None
    assert open_cache(labelled.path).thumbnails is not None


def test_changed_images_need_force(tmp_path: Path, class_folder: Path, capsys) -> None:
    ws = tmp_path / "ws"
    first = extract(class_folder, "pixels", out=ws, progress=False)
    before = np.array(first.features)
    img = class_folder / "Trouser" / "000.png"
    Image.fromarray(255 - np.asarray(Image.open(img))).save(img)
    with pytest.raises(CacheError, match="already holds a finished cache .* contents have changed.*--force"):
        extract(class_folder, "pixels", out=ws, progress=False)
    np.testing.assert_array_equal(open_cache(first.path).features, before)  # kept
    code, _, err = _cli(capsys, "extract", str(class_folder), "-e", "pixels", "-o", str(ws), "-q")
    assert code == 2 and err.count("\n") == 1 and "--force" in err
    replaced = extract(class_folder, "pixels", out=ws, progress=True, force=True)
    assert "replacing the finished cache" in capsys.readouterr().err
    assert replaced.path == first.path and not np.array_equal(replaced.features, before)


# --- one writer per cache ----------------------------------------------------------------------


def _stderr_lines(proc: subprocess.Popen) -> tuple[list[str], threading.Thread]:
    """Collect ``proc``'s stderr lines as they come (in a thread)."""
    lines: list[str] = []

    def pump() -> None:
        for line in proc.stderr:
            lines.append(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def _wait_until(condition, what: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_two_processes_extracting_the_same_cache(tmp_path: Path, class_folder: Path) -> None:
    """Two identical extractions and a --limit one at once: all finish, nothing is clobbered.

    The first run is held mid-extraction (a gate file) until the second has said it waits.
    """
    ws = tmp_path / "ws"
    gate = tmp_path / "gate"
    gate.touch()
    args = _slow_extract_args(class_folder, ws)
    first = _run_cli(args, {"SLOW_EXTRACTOR_DELAY": "0", "SLOW_EXTRACTOR_GATE": str(gate)})
    _wait_until(lambda: list(ws.glob("*/.writer.json")) or first.poll() is not None, "the first run's lock")
    second = _run_cli(args, {"SLOW_EXTRACTOR_DELAY": "0"})
    limited = _run_cli([*args, "--limit", "30"], {"SLOW_EXTRACTOR_DELAY": "0"})
    second_err, pump = _stderr_lines(second)
    _wait_until(
        lambda: any("waiting for pid" in ln for ln in second_err) or second.poll() is not None, "the second run to wait"
    )
    lim_out, lim_err = limited.communicate(timeout=240)  # another cache: it never waits for the first
    assert limited.returncode == 0, lim_err
    gate.unlink()
    first_out, first_err = first.communicate(timeout=240)
    second_out = second.stdout.read()
    second.wait(timeout=240)
    pump.join(timeout=10)
    assert first.returncode == 0 and second.returncode == 0, (first_err, "".join(second_err))
    path_a, path_b, path_l = (o.strip().splitlines()[-1] for o in (first_out, second_out, lim_out))
    assert path_a == path_b != path_l
    err = "".join(second_err)
    assert "waiting for pid" in err and "reusing cache" in err
    full, lim = open_cache(path_a), open_cache(path_l)
    assert len(full) == 60 and len(lim) == 30
    full.verify()
    np.testing.assert_array_equal(lim.features, full.features[:30])
    assert not (Path(path_a) / "_partial").exists()
    reference = extract(
        class_folder, "pixels", out=tmp_path / "ref", extractor_options={"size": 8}, thumbnails=64, progress=False
    )
    np.testing.assert_array_equal(full.features, reference.features)


@pytest.mark.slow
def test_no_wait_stops_with_one_line(tmp_path: Path, class_folder: Path) -> None:
    """While another process holds the writer lock, ``--no-wait`` stops at once with one line."""
    from workbench.cache.extraction import cache_dir_for
    from workbench.cache.writer_lock import WriterLock
    from workbench.images import open_source

    ws = tmp_path / "ws"
    target = cache_dir_for(open_source(class_folder), create_extractor("pixels"), ws)
    with WriterLock(target, say=lambda msg: None):  # this test process is "the other writer"
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "workbench.cli",
                "extract",
                str(class_folder),
                "-e",
                "pixels",
                "-o",
                str(ws),
                "--no-wait",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("workbench: error:")]
    assert len(lines) == 1 and f"is being written by pid {os.getpid()}" in lines[0]
    assert "Traceback" not in res.stderr
    assert not (target / "manifest.json").exists()


# --- damage is repaired by re-running ----------------------------------------------------------


@pytest.mark.slow
def test_kill_9_then_damaged_chunk_then_resume(tmp_path: Path, class_folder: Path) -> None:
    ws = tmp_path / "ws"
    args = _slow_extract_args(class_folder, ws, "--thumbnails", "0")
    proc = _run_cli(args, {"SLOW_EXTRACTOR_DELAY": "0.3"})
    markers = _wait_for_chunk(ws, proc, count=2)
    proc.kill()  # SIGKILL: no clean-up of any kind, the lock dies with the process
    proc.communicate()
    assert len(markers) >= 2, "the extraction never wrote two chunks"
    partial = markers[0].parent
    damaged = partial / markers[0].name.replace(".json", ".npz")
    damaged.write_bytes(damaged.read_bytes()[:100])  # a torn chunk file (e.g. a bad disk)
    rerun = _run_cli(args, {"SLOW_EXTRACTOR_DELAY": "0"})
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "is damaged (its data file has 100 bytes" in err and "re-extracting it" in err
    assert "resuming:" in err
    cache = open_cache(out.strip().splitlines()[-1])
    cache.verify()
    reference = extract(
        class_folder, "pixels", out=tmp_path / "ref", extractor_options={"size": 8}, thumbnails=0, progress=False
    )
    np.testing.assert_array_equal(cache.features, reference.features)


def test_damaged_chunk_without_checksum_is_re_extracted(tmp_path: Path, digits, capsys, monkeypatch) -> None:
    """Chunks written before checksums existed are checked by reading them back."""
    extraction = sys.modules["workbench.cache.extraction"]
    images = digits[0][:40]
    ext = create_extractor("pixels", size=8)
    opts = dict(out=tmp_path, name="d", chunk_size=10, thumbnails=0)
    real_write = extraction._write_chunk
    calls = {"n": 0}

    def interrupted_write(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C after two finished chunks
        real_write(*a, **k)

    monkeypatch.setattr(extraction, "_write_chunk", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        extract(images, ext, progress=False, **opts)
    monkeypatch.setattr(extraction, "_write_chunk", real_write)
    (marker,) = tmp_path.glob("*/_partial/chunk-0000000000.json")
    info = json.loads(marker.read_text())
    del info["bytes"], info["sha256"]  # as written by the previous version
    marker.write_text(json.dumps(info))
    marker.with_suffix(".npz").write_bytes(b"PK\x03\x04 not a zip any more")
    cache = extract(images, ext, progress=True, **opts)
    err = capsys.readouterr().err
    assert "[0, 10)" in err and "cannot be read (BadZipFile)" in err
    assert "resuming: 1 of 4 chunks" in err
    direct = np.stack([ext.preprocessor(np.repeat(im[:, :, None], 3, axis=2)) for im in images])
    np.testing.assert_array_equal(cache.features, ext(torch.from_numpy(direct)).features.numpy())


def test_truncated_finished_cache_is_rebuilt_by_rerunning(tmp_path: Path, class_folder: Path, capsys) -> None:
    ws = tmp_path / "ws"
    first = extract(class_folder, "pixels", out=ws, progress=False)
    good = np.array(first.features)
    feats = first.path / "features.npy"
    del first
    with open(feats, "r+b") as fh:
        fh.truncate(os.path.getsize(feats) - 1000)
    with pytest.raises(CacheError, match="truncated"):
        open_cache(feats.parent)
    rebuilt = extract(class_folder, "pixels", out=ws, progress=True)
    err = capsys.readouterr().err
    assert "is damaged" in err and "re-extracting it" in err
    np.testing.assert_array_equal(rebuilt.features, good)
    extract(class_folder, "pixels", out=ws, progress=True)
    assert "reusing cache" in capsys.readouterr().err
    # a damaged meta.parquet is caught by its size at opening, and rebuilt the same way
    meta = rebuilt.path / "meta.parquet"
    meta.write_bytes(meta.read_bytes()[:-10])
    with pytest.raises(CacheError, match="meta.parquet has .* bytes"):
        open_cache(rebuilt.path)
    extract(class_folder, "pixels", out=ws, progress=False)
    open_cache(rebuilt.path).verify()


# --- full and read-only disks ------------------------------------------------------------------


def test_disk_full_before_start_is_one_line(tmpfs, class_folder: Path, capsys) -> None:
    small = tmpfs("256k")
    code, _, err = _cli(capsys, "extract", str(class_folder), "-e", "pixels", "-o", str(small), "-q")
    assert code == 2 and err.startswith("workbench: error: not enough free space") and err.count("\n") == 1
    assert not list(small.rglob("*.tmp"))


def test_disk_full_while_writing_keeps_chunks_and_no_bus_error(tmpfs, class_folder: Path, monkeypatch) -> None:
    """The space check is fooled; the real ENOSPC while writing is a clean one-line error."""
    small = tmpfs("640k")
    script = (
        "import shutil, sys\n"
        "from collections import namedtuple\n"
        "U = namedtuple('U', 'total used free')\n"
        "shutil.disk_usage = lambda p: U(1 << 40, 0, 1 << 40)\n"
        "from workbench.cli import main\n"
        f"sys.exit(main(['extract', {str(class_folder)!r}, '-e', 'pixels', '-o', {str(small)!r}, '-q',"
        " '--chunk-size', '20', '--thumbnails', '128']))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, (res.returncode, res.stderr)  # not 135 (SIGBUS) nor a traceback
    assert "no space left on the device" in res.stderr and "Traceback" not in res.stderr
    assert not list(small.rglob("*.tmp"))
    assert not list(small.glob("*/manifest.json"))


def test_read_only_out_is_one_line(tmpfs, class_folder: Path, capsys) -> None:
    ro = tmpfs("1m", "ro")
    code, _, err = _cli(capsys, "extract", str(class_folder), "-e", "pixels", "-o", str(ro / "caches"), "-q")
    assert code == 2 and err.count("\n") == 1
    assert "read-only file system" in err and "--out" in err


# --- devices, weights, options: one line, exit 2, --debug for the traceback ---------------------


def test_device_without_gpu_is_one_line(tmp_path: Path, class_folder: Path, capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = _cli(capsys, "extract", str(class_folder), "-e", "pixels", "-o", str(tmp_path), "-d", "cuda")
    assert code == 2 and "no CUDA GPU is available here" in err and "--device cpu" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "extract", str(class_folder), "-e", "pixels", "-o", str(tmp_path), "-d", "gpu0")
    assert code == 2 and "is not a device name" in err


class _NotATensor:
    pass


def test_bad_weight_files_are_one_line(tmp_path: Path, class_folder: Path, capsys) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(os.urandom(2048))
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": _NotATensor()}, pickled)
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong)
    cases = [
        (junk, "is not a PyTorch"),
        (pickled, "pickled Python objects"),
        (wrong, "does not fit extractor 'inception'"),
    ]
    for path, expected in cases:
        code, _, err = _cli(
            capsys,
            "extract",
            str(class_folder),
            "-e",
            "inception",
            "-w",
            str(path),
            "-o",
            str(tmp_path / "ws"),
            "-d",
            "cpu",
        )
        assert code == 2 and expected in err and str(path) in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(ValueError, match="does not fit"):
        main(
            [
                "--debug",
                "extract",
                str(class_folder),
                "-e",
                "inception",
                "-w",
                str(wrong),
                "-o",
                str(tmp_path),
                "-d",
                "cpu",
            ]
        )


def test_bad_options_are_one_line(tmp_path: Path, class_folder: Path, capsys) -> None:
    base = ["extract", str(class_folder), "-e", "pixels", "-o", str(tmp_path / "ws")]
    code, _, err = _cli(capsys, *base, "--option", "size")
    assert code == 2 and "--option expects KEY=VALUE" in err
    code, _, err = _cli(capsys, *base, "--option", "size=8", "--option", "size=9")
    assert code == 2 and "given twice" in err
    code, _, err = _cli(capsys, *base, "--option", "colour=red")
    assert code == 2 and "has no option 'colour'" in err and "size" in err
    code, _, err = _cli(capsys, *base, "--thumbnails", "100000")
    assert code == 2 and "thumbnails" in err and "1024" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main([*base, "--batch-size", "0"])
    assert exc.value.code == 2 and "positive integer" in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()  # nothing was created for refused requests


# --- sources walked once, duplicates listed, hostile images bounded ------------------------------


def test_symlink_loop_duplicates_and_bomb_through_extract(tmp_path: Path, fmnist_test, capsys) -> None:
    from test_images_hostile import _blank_bilevel_png

    images, _ = fmnist_test
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(images[i]).save(root / "sub" / f"im{i}.png")
    os.symlink("..", root / "sub" / "back")  # sub/back -> src: a loop
    shutil.copy(root / "sub" / "im0.png", root / "copy_of_im0.png")
    (root / "bomb.png").write_bytes(_blank_bilevel_png(10_000, 10_000))  # 100 Mpx in a few KB
    code, out, err = _cli(capsys, "extract", str(root), "-e", "pixels", "-o", str(tmp_path / "ws"))
    assert code == 0, err
    assert "note: sub/back: symlink to a folder already listed" in err
    assert "1 exact duplicate image in 1 group: copy_of_im0.png = sub/im0.png" in err
    assert "skipped 1 unreadable image(s): bomb.png" in err
    cache = open_cache(out.strip().splitlines()[-1])
    assert len(cache) == 4 and sorted(cache.meta["id"]) == [
        "copy_of_im0.png",
        "sub/im0.png",
        "sub/im1.png",
        "sub/im2.png",
    ]
    assert cache.manifest["duplicates"] == [["copy_of_im0.png", "sub/im0.png"]]
    assert any("sub/back" in n for n in cache.manifest["source"]["notes"])
    assert "above the limit of 67,108,864 pixels" in cache.skipped[0]["reason"]
    code, out, _ = _cli(capsys, "info", str(cache.path))
    assert code == 0 and "duplicates 1 exact duplicate image(s) in 1 group(s): copy_of_im0.png = sub/im0.png" in out
    assert "note       sub/back" in out
    # raising the limit reads the bomb: another cache (the option is part of the key), the first is kept
    code, out, err = _cli(
        capsys,
        "extract",
        str(root),
        "-e",
        "pixels",
        "-o",
        str(tmp_path / "ws"),
        "--max-pixels",
        "100000000",
        "--thumbnails",
        "0",
        "-q",
    )
    assert code == 0, err
    bigger = open_cache(out.strip())
    assert len(bigger) == 5 and bigger.path != cache.path and len(open_cache(cache.path)) == 4
