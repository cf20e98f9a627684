"""Embedding caches: round trip, reuse, invalidation, corrupt inputs, tampering, shards, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.cache import CacheError, ShardedArray, extract, open_cache
from workbench.extractors import create_extractor
from workbench.extractors.base import WeightsInfo
from workbench.extractors.pixels import BoxResize, PixelsExtractor

REPO = Path(__file__).resolve().parent.parent


def _direct_pixels(images: np.ndarray, size: int = 16) -> np.ndarray:
    """Reference features computed without the pipeline: PIL box resize of each RGB image."""
    pre = BoxResize(size)
    return np.stack([pre(np.repeat(im[:, :, None], 3, axis=2)).reshape(-1) for im in images])


def test_round_trip_folder(tmp_path: Path, class_folder: Path, fmnist_test) -> None:
    cache = extract(class_folder, "pixels", out=tmp_path / "ws", batch_size=16, chunk_size=25, progress=False)
    assert isinstance(cache.features, np.memmap) and cache.features.dtype == np.float32
    assert cache.features.shape == (60, 768) and len(cache) == 60
    assert cache.logits is None
    assert cache.thumbnails.shape == (60, 64, 64, 3) and cache.thumbnails.dtype == np.uint8
    # features equal the extractor applied image by image, in source (sorted path) order
    images = np.stack([np.asarray(Image.open(class_folder / p))[:, :] for p in cache.meta["id"]])
    np.testing.assert_allclose(cache.features, _direct_pixels(images), rtol=0, atol=1e-7)
    meta = cache.meta
    assert list(meta.columns) == ["index", "id", "label", "class_name", "content_hash"]
    assert meta["class_name"].iloc[0] == "Sneaker" and meta["label"].iloc[-1] == 2
    assert cache.class_names == ["Sneaker", "T-shirt-top", "Trouser"]
    m = cache.manifest
    assert m["complete"] and m["n"] == 60 and m["dim"] == 768 and m["format_version"] == 1
    # pixels has no weights at all: nothing published to miss, so no warning (random weights get one)
    assert m["pretrained"] is False and m["warning"] is None
    assert m["extractor"]["preprocessing"]["resize"] == "pil-box"
    assert set(m["files"]) == {"features.npy", "meta.parquet", "thumbnails.npy"}
    assert not (cache.path / "_partial").exists()
    reopened = open_cache(cache.path)
    np.testing.assert_array_equal(reopened.features, cache.features)
    reopened.verify()


def test_reuse_and_invalidation(tmp_path: Path, class_folder: Path, capsys: pytest.CaptureFixture) -> None:
    ws = tmp_path / "ws"
    first = extract(class_folder, "pixels", out=ws, progress=False)
    stamp = (first.path / "features.npy").stat().st_mtime_ns
    again = extract(class_folder, "pixels", out=ws, progress=True)
    assert again.path == first.path
    assert (first.path / "features.npy").stat().st_mtime_ns == stamp
    assert "reusing cache" in capsys.readouterr().err
    # a changed image is detected; the finished cache is kept until --force replaces it in place
    victim = class_folder / first.meta["id"].iloc[3]
    arr = np.asarray(Image.open(victim)).copy()
    arr[0, 0] ^= 0xFF
    Image.fromarray(arr).save(victim)
    with pytest.raises(CacheError, match="contents have changed"):
        extract(class_folder, "pixels", out=ws, progress=True)
    changed = extract(class_folder, "pixels", out=ws, progress=True, force=True)
    assert "replacing the finished cache" in capsys.readouterr().err
    assert changed.path == first.path and changed.manifest["key"] != first.manifest["key"]
    # the old memmap still maps the replaced (unlinked) file, so both versions can be compared
    assert not np.array_equal(changed.features[3], first.features[3])
    np.testing.assert_array_equal(changed.features[4], first.features[4])
    assert changed.meta["content_hash"].iloc[3] != first.meta["content_hash"].iloc[3]
    # other preprocessing -> another cache directory, both kept
    other = extract(class_folder, "pixels", out=ws, progress=False, extractor_options={"size": 8})
    assert other.path != first.path and other.manifest["dim"] == 192
    assert len(list(ws.iterdir())) == 2


def test_weights_identity_is_part_of_the_key(tmp_path: Path, digits) -> None:
    images = digits[0][:40]

    def make(identity: str) -> PixelsExtractor:
        return PixelsExtractor(
            name="pixels",
            variant="4px",
            dim=48,
            preprocessor=BoxResize(4),
            weights=WeightsInfo(spec="file", pretrained=False, identity=identity),
        )

    a = extract(images, make("sha256:aaa"), out=tmp_path, name="d", progress=False)
    b = extract(images, make("sha256:bbb"), out=tmp_path, name="d", progress=False)
    assert a.path != b.path
    assert a.manifest["extractor"]["weights"]["identity"] == "sha256:aaa"


def test_corrupt_files_are_skipped_and_reported(tmp_path: Path, class_folder: Path, capsys) -> None:
    (class_folder / "Trouser" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = (class_folder / "Sneaker" / "000.png").read_bytes()
    (class_folder / "Sneaker" / "zz_cut.png").write_bytes(good[: len(good) // 2])
    cache = extract(class_folder, "pixels", out=tmp_path / "ws", batch_size=8, chunk_size=16, progress=True)
    err = capsys.readouterr().err
    assert "skipped 2 unreadable image(s)" in err and "zz_broken.png" in err
    assert len(cache) == 60
    assert sorted(s["id"] for s in cache.skipped) == ["Sneaker/zz_cut.png", "Trouser/zz_broken.png"]
    assert all("cannot decode" in s["reason"] for s in cache.skipped)
    assert "zz_cut.png" not in set(cache.meta["id"])


def test_all_images_unreadable_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "bad"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(b"nope")
    with pytest.raises(ValueError, match="none of the 3 images could be read"):
        extract(src, "pixels", out=tmp_path / "ws", progress=False)


def test_truncated_tampered_and_incomplete_caches(tmp_path: Path, digits) -> None:
    cache = extract(digits[0][:100], "pixels", out=tmp_path, name="d", progress=False)
    path = cache.path
    del cache
    feats = path / "features.npy"
    data = feats.read_bytes()
    # tampered: same size, different bytes -> open works, verify() fails
    feats.write_bytes(data[:-4] + b"\x00\x00\x80\x7f")
    with pytest.raises(CacheError, match="SHA-256"):
        open_cache(path).verify()
    # truncated -> open fails naming the file
    feats.write_bytes(data[:-100])
    with pytest.raises(CacheError, match="features.npy is truncated"):
        open_cache(path)
    feats.write_bytes(data)
    (path / "meta.parquet").write_bytes(b"PAR1 broken")
    with pytest.raises(CacheError, match="meta.parquet has 11 bytes, the manifest says"):
        open_cache(path)  # sizes of every file are checked at opening
    manifest = path / "manifest.json"
    manifest.write_text(manifest.read_text()[:50])
    with pytest.raises(CacheError, match="not valid JSON"):
        open_cache(path)
    manifest.unlink()
    with pytest.raises(CacheError, match="not a complete embedding cache"):
        open_cache(path)
    with pytest.raises(CacheError, match="not found"):
        open_cache(tmp_path / "missing")


def test_features_file_with_pickled_objects_is_refused(tmp_path: Path, digits) -> None:
    cache = extract(digits[0][:20], "pixels", out=tmp_path, name="d", progress=False)
    path = cache.path
    del cache
    np.save(path / "features.npy", np.array([object()] * 20, dtype=object), allow_pickle=True)
    with pytest.raises(CacheError, match="pickle"):
        open_cache(path)


def test_shards_read_as_one(tmp_path: Path, fmnist_test) -> None:
    images, labels = fmnist_test[0][:101], fmnist_test[1][:101]
    whole = extract(images, "pixels", out=tmp_path / "a", name="f", labels=labels, progress=False)
    for i in (2, 0):
        extract(images, "pixels", out=tmp_path / "b", name="f", labels=labels, shard=f"{i}/3", progress=False)
    base = next((tmp_path / "b").iterdir())
    with pytest.raises(CacheError, match="1 of 3 shards missing"):
        open_cache(base)
    extract(images, "pixels", out=tmp_path / "b", name="f", labels=labels, shard=(1, 3), progress=False)
    sharded = open_cache(base)
    assert isinstance(sharded.features, ShardedArray) and len(sharded) == 101
    assert sharded.manifest["shards"] == 3
    np.testing.assert_array_equal(np.asarray(sharded.features), whole.features)
    np.testing.assert_array_equal(sharded.features[[100, 0, 34]], whole.features[[100, 0, 34]])
    np.testing.assert_array_equal(sharded.features[33:35, :5], whole.features[33:35, :5])
    np.testing.assert_array_equal(sharded.thumbnails[-1], whole.thumbnails[-1])
    np.testing.assert_array_equal(sharded.meta["index"], np.arange(101))
    np.testing.assert_array_equal(sharded.labels, labels)
    blocks = list(sharded.features.iter_blocks(rows=20))
    assert sum(len(b) for b in blocks) == 101
    with pytest.raises(ValueError, match="I/N"):
        extract(images, "pixels", out=tmp_path / "c", shard="3", progress=False)
    with pytest.raises(ValueError, match="0 <= I < N"):
        extract(images, "pixels", out=tmp_path / "c", shard="3/3", progress=False)


@pytest.mark.slow
def test_resume_after_kill(tmp_path: Path, fmnist_test) -> None:
    """kill -9 mid-run, then resume: finished chunks are kept, nothing is duplicated."""
    images = np.repeat(fmnist_test[0][:600, :, :, None], 3, axis=3)
    npz = tmp_path / "samples.npz"
    np.savez(npz, images)
    ws = tmp_path / "ws"
    cmd = [
        sys.executable,
        "-m",
        "workbench",
        "extract",
        str(npz),
        "--extractor",
        "slow_extractor:create",
        "--out",
        str(ws),
        "--batch-size",
        "10",
        "--chunk-size",
        "50",
        "--workers",
        "0",
        "--thumbnails",
        "16",
    ]
    env = dict(os.environ, SLOW_EXTRACTOR_DELAY="0.03", PYTHONPATH=str(REPO / "tests" / "plugins"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    partial = None
    while time.time() < deadline:
        found = list(ws.glob("*/_partial/chunk-*.json")) if ws.exists() else []
        if len(found) >= 3:
            partial = found[0].parent
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert partial is not None, "extraction never wrote a chunk"
    n_chunks = len(list(partial.glob("chunk-*.json")))
    assert 3 <= n_chunks < 12
    with pytest.raises(CacheError, match="resume"):
        open_cache(partial.parent)

    resumed = subprocess.run(cmd, env=dict(env, SLOW_EXTRACTOR_DELAY="0"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {n_chunks} of 12 chunks" in resumed.stderr
    cache = open_cache(resumed.stdout.strip())
    assert len(cache) == 600
    np.testing.assert_array_equal(cache.meta["index"], np.arange(600))
    fresh = extract(images, create_extractor("pixels", size=8), out=tmp_path / "fresh", progress=False, thumbnails=16)
    np.testing.assert_array_equal(cache.features, fresh.features)
    np.testing.assert_array_equal(cache.thumbnails, fresh.thumbnails)


def test_cli_extract_and_info(tmp_path: Path, class_folder: Path, capsys) -> None:
    from workbench.cli import main

    assert main(["extract", str(class_folder), "-e", "pixels", "-o", str(tmp_path), "--limit", "25", "-q"]) == 0
    path = capsys.readouterr().out.strip()
    assert open_cache(path).manifest["n"] == 25
    assert main(["info", path, "--verify"]) == 0
    out = capsys.readouterr().out
    assert "25 x 768" in out and "no-weights" in out and "NOT PRETRAINED" not in out and "verified" in out
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert "cache not found" in capsys.readouterr().err
    assert main(["extract", str(tmp_path / "nope"), "-e", "pixels"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["extract", str(class_folder), "-e", "no-such-extractor", "-o", str(tmp_path)]) == 2
    assert "unknown extractor" in capsys.readouterr().err
