"""Hostile and degenerate image sources: symlink loops, duplicates, decompression bombs, bad npz files.

Every case must end in bounded memory and in a message that names the file (and the array, for
``.npz``) and says what to do; nothing may be listed twice or dropped without a note.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.images import (
    DEFAULT_MAX_PIXELS,
    MAX_THUMBNAIL_PX,
    ArraySource,
    FolderSource,
    ImageDecodeError,
    NpzSource,
    SubsetSource,
    ZipSource,
    array_to_rgb8,
    check_thumbnail_size,
    decode_bytes,
    file_size_limit,
    find_duplicates,
    make_thumbnail,
    open_source,
    summarize_duplicates,
)

REPO = Path(__file__).resolve().parents[1]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _blank_bilevel_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit grayscale PNG of any size, built row by row in little memory.

    A 10000 x 10000 image is about 12 KB on disk (its pixel rows are 12.5 MB of zeros).
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter type 0 + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _write_images(folder: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_png(np.full((8, 8), 40 * i, np.uint8)))


# ---------------------------------------------------------------- folders are walked once


def test_symlink_loop_lists_each_image_once_with_a_note(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _write_images(root, ["im0.png", "sub/im1.png", "sub/im2.png"])
    os.symlink("..", root / "sub" / "back")
    src = open_source(root)
    assert src.listing() == ["im0.png", "sub/im1.png", "sub/im2.png"]
    assert src.skipped_dirs == ["sub/back"]
    assert len(src.notes) == 1
    assert src.notes[0].startswith("sub/back: symlink to a folder already listed")
    assert "source folder itself" in src.notes[0]
    described = json.loads(json.dumps(src.describe()))
    assert described["skipped_dirs"] == ["sub/back"] and described["count"] == 3


def test_folder_reached_by_two_links_is_listed_once_and_real_path_wins(tmp_path: Path) -> None:
    outside = tmp_path / "shared"
    _write_images(outside, ["a.png", "b.png"])
    root = tmp_path / "data"
    _write_images(root, ["real/c.png"])
    os.symlink(outside, root / "link1")
    os.symlink(outside, root / "link2")
    os.symlink(root / "real", root / "a_link_to_real")  # sorts before "real", still not preferred
    src = FolderSource(root, labels="none")
    assert src.listing() == ["link1/a.png", "link1/b.png", "real/c.png"]
    assert src.skipped_dirs == ["a_link_to_real", "link2"]
    assert any("link2" in n and "'link1'" in n for n in src.notes)
    assert any("a_link_to_real" in n and "'real'" in n for n in src.notes)
    np.testing.assert_array_equal(src.load(0)[:, :, 0], np.zeros((8, 8), np.uint8))


def test_symlinked_image_files_stay_separate_samples(tmp_path: Path) -> None:
    _write_images(tmp_path, ["a.png"])
    os.symlink(tmp_path / "a.png", tmp_path / "b.png")
    src = FolderSource(tmp_path)
    assert src.listing() == ["a.png", "b.png"] and src.notes == []
    assert src.content_hash(0) == src.content_hash(1)


def test_fifo_named_like_an_image_is_skipped_with_a_note(tmp_path: Path) -> None:
    _write_images(tmp_path, ["a.png"])
    os.mkfifo(tmp_path / "pipe.png")  # reading it would block forever
    src = FolderSource(tmp_path)
    assert src.listing() == ["a.png"]
    assert src.notes == ["pipe.png: not a regular file (FIFO, socket or device); skipped"]


def test_subset_shares_the_notes_of_its_source(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _write_images(root, ["im0.png", "sub/im1.png"])
    os.symlink("..", root / "sub" / "back")
    base = FolderSource(root)
    assert SubsetSource(base, [1]).notes == base.notes and len(base.notes) == 1


# ---------------------------------------------------------------- exact duplicates


def test_find_duplicates_groups_in_first_occurrence_order() -> None:
    ids = ["a.png", "c.png", "b.png", "d.png", "x.png", "e.png", "u1.png", "u2.png"]
    hashes = ["h1", "h2", "h1", "h2", "h3", "h2", "unreadable", "unreadable"]
    groups = find_duplicates(ids, hashes)
    assert groups == [["a.png", "b.png"], ["c.png", "d.png", "e.png"]]
    assert summarize_duplicates(groups) == "3 exact duplicate images in 2 groups: a.png = b.png; c.png = d.png = e.png"
    assert find_duplicates(["a", "b"], ["h", "g"]) == []
    assert summarize_duplicates([]) == "no exact duplicate images"
    with pytest.raises(ValueError, match="2 ids but 1 hashes"):
        find_duplicates(["a", "b"], ["h"])


def test_summarize_duplicates_truncates_long_lists() -> None:
    groups = [[f"g{g}_{i}.png" for i in range(10)] for g in range(8)]
    line = summarize_duplicates(groups, max_groups=2, max_ids=3)
    assert line.startswith("72 exact duplicate images in 8 groups: g0_0.png = g0_1.png = g0_2.png = ... (10 images); ")
    assert line.endswith("... and 6 more groups")
    assert "g0_3.png" not in line and "g2_0.png" not in line
    assert summarize_duplicates([["a", "b"]]) == "1 exact duplicate image in 1 group: a = b"


def test_duplicates_from_a_real_source(tmp_path: Path) -> None:
    _write_images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "copy_of_a.png").write_bytes((tmp_path / "a.png").read_bytes())
    os.symlink(tmp_path / "gone1.png", tmp_path / "broken1.png")  # two unreadable files: no group
    os.symlink(tmp_path / "gone2.png", tmp_path / "broken2.png")
    src = FolderSource(tmp_path)
    hashes = [src.content_hash(i) for i in range(len(src))]
    assert hashes.count("unreadable") == 2
    assert find_duplicates(src.listing(), hashes) == [["a.png", "copy_of_a.png"]]


# ---------------------------------------------------------------- decompression bombs


def test_bilevel_png_generator_makes_valid_pngs() -> None:
    img = decode_bytes(_blank_bilevel_png(37, 5), "small.png")
    assert img.shape == (5, 37, 3) and not img.any()


def test_100_megapixel_png_is_refused_before_decoding(tmp_path: Path) -> None:
    data = _blank_bilevel_png(10_000, 10_000)
    assert len(data) < 100_000
    with pytest.raises(ImageDecodeError) as err:
        decode_bytes(data, "bomb.png")
    msg = str(err.value)
    assert msg.startswith("bomb.png: image is 10000 x 10000 = 100,000,000 pixels")
    assert f"limit of {DEFAULT_MAX_PIXELS:,} pixels" in msg
    assert "--max-pixels 100000000 / max_pixels=100000000" in msg
    (tmp_path / "bomb.png").write_bytes(data)
    with pytest.raises(ImageDecodeError, match=r"bomb\.png: image is 10000 x 10000"):
        open_source(tmp_path).load(0)


def test_pixel_limit_is_ours_not_pils(monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder) -> None:
    data = _png(np.zeros((50, 50), np.uint8))  # 2,500 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL alone would raise above 2,000
    assert decode_bytes(data, "ok.png").shape == (50, 50, 3)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
    with pytest.raises(ImageDecodeError, match=r"ok\.png: image is 50 x 50 = 2,500 pixels, above the limit of 2,499"):
        decode_bytes(data, "ok.png", max_pixels=2499)
    assert decode_bytes(data, "ok.png", max_pixels=2500).shape == (50, 50, 3)
    with pytest.raises(ValueError, match="max_pixels must be a positive"):
        decode_bytes(data, "ok.png", max_pixels=0)


def test_max_pixels_is_threaded_through_every_source(tmp_path: Path) -> None:
    img = np.zeros((40, 30), np.uint8)  # 1,200 pixels
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.png").write_bytes(_png(img))
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("a.png", _png(img))
    for path in (tmp_path / "f", tmp_path / "a.zip"):
        assert open_source(path, max_pixels=1200).load(0).shape == (40, 30, 3)
        with pytest.raises(ImageDecodeError, match=r"a\.png: image is 30 x 40 = 1,200 pixels.*max_pixels=1200"):
            open_source(path, max_pixels=1199).load(0)
    with pytest.raises(ValueError, match=r"array: the images array holds images of 30 x 40 = 1,200 pixels"):
        open_source(np.stack([img, img]), max_pixels=1000)
    with pytest.raises(ImageDecodeError, match="1,200 pixels"):
        array_to_rgb8(img, "one", max_pixels=1000)
    np.savez(tmp_path / "s.npz", np.stack([img, img]))
    with pytest.raises(
        ValueError, match=r"s\.npz: array 'arr_0' holds images of 30 x 40 = 1,200 pixels.*--max-pixels 1200"
    ):
        open_source(tmp_path / "s.npz", max_pixels=1000)
    assert open_source(tmp_path / "s.npz", max_pixels=1200).describe()["max_pixels"] == 1200


def _big_zero_member(zf: zipfile.ZipFile, name: str, mib: int) -> None:
    with zf.open(name, "w", force_zip64=True) as fh:
        block = bytes(1 << 20)
        for _ in range(mib):
            fh.write(block)


def test_zip_member_declared_above_the_limit_is_skipped_and_reported(tmp_path: Path) -> None:
    assert file_size_limit() == 256 * 2**20
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("ok.png", _png(np.zeros((8, 8), np.uint8)))
        _big_zero_member(zf, "huge.png", 260)  # 260 MiB of zeros, about 1 MB in the archive
    assert path.stat().st_size < 3 * 2**20
    src = open_source(path)
    assert src.listing() == ["ok.png"]
    assert src.skipped_members == [
        {"name": "huge.png", "size": 260 * 2**20, "compressed_size": src.skipped_members[0]["compressed_size"]}
    ]
    assert len(src.notes) == 1 and src.notes[0].startswith("huge.png: 272,629,760 bytes uncompressed")
    assert "above the limit of 268,435,456 bytes" in src.notes[0] and "max_file_bytes=N" in src.notes[0]
    assert json.loads(json.dumps(src.describe()))["skipped_members"][0]["name"] == "huge.png"
    # A smaller explicit limit applies the same way.
    small = ZipSource(path, max_file_bytes=10)
    assert small.listing() == [] and [m["name"] for m in small.skipped_members] == ["huge.png", "ok.png"]
    with pytest.raises(ValueError, match=r"no images found in .*hostile\.zip.*Left out while listing: huge\.png: "):
        open_source(path, max_file_bytes=10)


def test_zip_member_that_lies_about_its_size_is_read_no_further(tmp_path: Path) -> None:
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("liar.png", bytes(4 << 20))  # 4 MiB of zeros
    raw = bytearray(path.read_bytes())
    central = raw.index(b"PK\x01\x02")
    assert struct.unpack_from("<I", raw, central + 24)[0] == 4 << 20
    struct.pack_into("<I", raw, central + 24, 1000)  # the directory now claims 1,000 bytes
    path.write_bytes(bytes(raw))
    src = ZipSource(path)
    assert src.listing() == ["liar.png"]
    with pytest.raises(ImageDecodeError, match=r"liar\.zip:liar\.png: cannot read member"):
        src.load(0)


def test_zip_with_a_name_stored_twice_lists_both_members(tmp_path: Path) -> None:
    path = tmp_path / "twice.zip"
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.png", _png(np.zeros((4, 4), np.uint8)))
        zf.writestr("a.png", _png(np.full((4, 4), 200, np.uint8)))
    src = ZipSource(path)
    assert src.listing() == ["a.png", "a.png"]
    assert src.notes == ["a.png: stored 2 times in the archive; every copy is listed"]
    assert {int(src.load(0).max()), int(src.load(1).max())} == {0, 200}
    assert src.content_hash(0) != src.content_hash(1)


def test_oversized_file_in_a_folder_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(_png(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)))
    src = FolderSource(tmp_path, max_file_bytes=1000)
    with pytest.raises(
        ImageDecodeError, match=r"big\.png: file is [\d,]+ bytes, above the limit of 1,000 bytes.*max_file_bytes=N"
    ):
        src.load(0)
    assert src.content_hash(0) == "unreadable"


# Peak resident memory of this process from /proc (VmHWM, KiB): unlike ru_maxrss it starts afresh
# at exec, so the memory of the (large) pytest process that started the script does not count.
_RSS_SCRIPT = r"""
import json, sys
def peak_kib():
    with open("/proc/self/status") as fh:
        return int(next(line for line in fh if line.startswith("VmHWM:")).split()[1])
from workbench.images import FolderSource, ImageDecodeError, ZipSource
before = peak_kib()
messages = []
folder = FolderSource(sys.argv[1])
try:
    folder.load(0)
except ImageDecodeError as exc:
    messages.append(str(exc))
archive = ZipSource(sys.argv[2])
try:
    archive.load(archive.listing().index("bomb.png"))
except ImageDecodeError as exc:
    messages.append(str(exc))
after = peak_kib()
print(json.dumps({"before_kib": before, "after_kib": after, "messages": messages, "notes": archive.notes,
                  "listing": archive.listing()}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_bombs_cost_little_memory(tmp_path: Path) -> None:
    bomb = _blank_bilevel_png(10_000, 10_000)  # 100 Mpx: 300 MB as RGB if it were decoded
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(bomb)
    archive = tmp_path / "bombs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("bomb.png", bomb)
        _big_zero_member(zf, "huge.png", 300)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(folder), str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(REPO),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["messages"]) == 2
    assert all("10000 x 10000 = 100,000,000 pixels" in m for m in result["messages"])
    assert result["listing"] == ["bomb.png"] and result["notes"][0].startswith("huge.png: 314,572,800 bytes")
    grown_mib = (result["after_kib"] - result["before_kib"]) / 1024
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB"
    assert result["after_kib"] / 1024 < 500


# ---------------------------------------------------------------- thumbnails


def test_thumbnail_size_is_capped() -> None:
    assert MAX_THUMBNAIL_PX == 1024
    assert check_thumbnail_size(0) == 0 and check_thumbnail_size(1024) == 1024
    assert check_thumbnail_size(np.int64(64)) == 64
    for bad in (100000, 1025, -1, 64.5, "64", True):
        with pytest.raises(ValueError, match="--thumbnails must be between 0 and 1024 pixels, got"):
            check_thumbnail_size(bad)
    with pytest.raises(ValueError, match="^--thumbnails must be between 0 and 1024 pixels, got 100000$"):
        check_thumbnail_size(100000)
    img = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ValueError, match="got 100000"):
        make_thumbnail(img, 100000)
    with pytest.raises(ValueError, match="at least 1 pixel"):
        make_thumbnail(img, 0)
    assert make_thumbnail(img, 1024).shape == (1024, 1024, 3)


# ---------------------------------------------------------------- npz errors name the array


def test_npz_errors_name_the_file_and_the_array(tmp_path: Path) -> None:
    path = tmp_path / "samples.npz"
    np.savez(path, np.zeros((10, 32), np.uint8))
    with pytest.raises(
        ValueError, match=r"samples\.npz: array 'arr_0' has shape \(10, 32\) but images must be N x H x W x C"
    ):
        NpzSource(path)
    np.savez(path, images=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(KeyError, match=r"samples\.npz: no array 'arr_0' in the file \(arrays: \['images'\]\); choose"):
        NpzSource(path)
    assert len(NpzSource(path, key="images")) == 2
    np.savez(path, np.zeros((2, 8, 8, 5), np.uint8))
    with pytest.raises(ValueError, match=r"array 'arr_0' has shape \(2, 8, 8, 5\).*no image layout"):
        NpzSource(path)
    np.savez(path, np.zeros((2, 8, 8), bool))
    with pytest.raises(ValueError, match=r"samples\.npz: array 'arr_0' has dtype bool; images must be uint8"):
        NpzSource(path)
    np.savez(path, np.full((2, 8, 8), 200.0, np.float32))
    with pytest.raises(
        ValueError, match=r"samples\.npz: array 'arr_0': image 0: float images must have values in \[0, 1\]"
    ):
        NpzSource(path)


def test_npz_bad_image_after_the_first_is_named_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "samples.npz"
    data = np.zeros((3, 8, 8), np.float32)
    data[2] = 7.0
    np.savez(path, data)
    src = NpzSource(path)
    assert src.load(1).shape == (8, 8, 3)
    with pytest.raises(ImageDecodeError, match=r"samples\.npz: array 'arr_0', image 2: float images"):
        src.load(2)
    assert src.sample_id(2) == "samples[2]"  # ids (and cache keys) unchanged


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_object_arrays_are_refused_without_unpickling(tmp_path: Path, save) -> None:
    path = tmp_path / "objects.npz"
    save(path, np.zeros((2, 8, 8), np.uint8), np.array([{"a": 1}, None], dtype=object))
    src = open_source(path)  # an object arr_1 is never unpickled; it is ignored with a note
    assert src.labels is None
    assert src.notes == [
        "objects.npz: array 'arr_1' has dtype object (Python objects, which only pickle can read); labels must "
        "be 2 integers; not used as labels (pass labels_key=None to say so, or labels=...)"
    ]
    save(path, np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"objects\.npz: array 'arr_0' has dtype object.*allow_pickle=False"):
        open_source(path)


def test_npz_label_arrays(tmp_path: Path) -> None:
    path = tmp_path / "samples.npz"
    images = np.zeros((4, 8, 8, 3), np.uint8)
    np.savez(path, images, np.arange(3))  # 3 labels for 4 images
    src = NpzSource(path)
    assert src.labels is None
    assert src.notes == [
        "samples.npz: array 'arr_1' has shape (3,) and dtype int64, but labels must be 4 integers (one per image); "
        "not used as labels (pass labels_key=None to say so, or labels=...)"
    ]
    with pytest.raises(ValueError, match=r"samples\.npz: labels array 'arr_1' has shape \(3,\)"):
        NpzSource(path, labels_key="arr_1")
    with pytest.raises(KeyError, match=r"no labels array 'y'"):
        NpzSource(path, labels_key="y")
    with pytest.raises(ValueError, match=r"samples\.npz \(array 'arr_0' holds 4 images\): labels must be 4 integers"):
        open_source(path, labels=np.arange(5))
    given = open_source(path, labels=np.array([3, 2, 1, 0]))
    assert given.labels.tolist() == [3, 2, 1, 0] and given.notes == []
    np.savez(path, x=images, y=np.array([1, 1, 0, 0], np.uint8))
    named = NpzSource(path, key="x", labels_key="y")
    assert named.labels.tolist() == [1, 1, 0, 0] and named.describe()["labels_key"] == "y"
    np.savez(path, images, np.arange(4))
    assert open_source(path).labels.tolist() == [0, 1, 2, 3]
    assert open_source(path, labels="none").labels is None
    with pytest.raises(ValueError, match="labels='folders' is for folders and zips"):
        open_source(path, labels="folders")


def test_compressed_npz_too_big_for_memory_is_refused_from_its_header(tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (1_000_000, 1024, 1024, 3)}
    )
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("arr_0.npy", header.getvalue())  # a 3 TB array, by its header
    with pytest.raises(
        ValueError,
        match=r"claims\.npz: array 'arr_0' is compressed and decompresses to [\d.]+ GiB, more than this machine",
    ):
        NpzSource(path)


def test_array_sources_reject_non_image_arrays() -> None:
    with pytest.raises(ValueError, match=r"has dtype complex128"):
        ArraySource(np.zeros((2, 4, 4), complex))
    with pytest.raises(ValueError, match=r"mine: the images array has shape \(2, 5, 5, 7\)"):
        ArraySource(np.zeros((2, 5, 5, 7), np.uint8), name="mine")
    # one H x W x 3 picture is not 480 grayscale images 3 pixels wide
    with pytest.raises(
        ValueError, match=r"one 640 x 480 colour image, not a stack.*images\[None\] \(shape \(1, 480, 640, 3\)\)"
    ):
        ArraySource(np.zeros((480, 640, 3), np.uint8))
    assert len(ArraySource(np.zeros((1, 480, 640, 3), np.uint8))) == 1
    assert len(ArraySource(np.zeros((5, 28, 28), np.uint8))) == 5  # N x H x W grayscale stays as it was
