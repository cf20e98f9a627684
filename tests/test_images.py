"""Image sources and decoding on real Fashion-MNIST / digits pictures."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.images import (
    ArraySource,
    FolderSource,
    ImageDecodeError,
    NpzSource,
    ZipSource,
    array_to_rgb8,
    decode_bytes,
    make_thumbnail,
    open_source,
)


def _png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_folder_recursive_any_case_sorted(tmp_path: Path, fmnist_test) -> None:
    images, _ = fmnist_test
    names = ["b/x.PNG", "a.jpg", "c/d/e.Jpeg", "z.webp", "m.BMP", "notes.txt", ".hidden.png"]
    for i, name in enumerate(names):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            p.write_text("not an image")
            continue
        fmt = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP"}[
            name.rsplit(".", 1)[1].lower()
        ]
        Image.fromarray(images[i]).save(p, format=fmt)
    src = open_source(tmp_path)
    assert isinstance(src, FolderSource)
    assert src.listing() == ["a.jpg", "b/x.PNG", "c/d/e.Jpeg", "m.BMP", "z.webp"]
    assert src.labels is None  # mixed depths: no class folders
    img = src.load(1)  # b/x.PNG is lossless: exact pixels
    assert img.shape == (28, 28, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[:, :, 0], images[0])  # written from names[0]
    np.testing.assert_array_equal(img[:, :, 0], img[:, :, 2])


def test_class_folders_give_labels(class_folder: Path) -> None:
    src = open_source(class_folder)
    assert src.class_names == ["Sneaker", "T-shirt-top", "Trouser"]
    assert len(src) == 60
    assert np.bincount(src.labels).tolist() == [20, 20, 20]
    assert src.class_name(0) == "Sneaker"
    assert open_source(class_folder, labels="none").labels is None


def test_labels_folders_requires_class_folders(tmp_path: Path, digits) -> None:
    Image.fromarray(digits[0][0]).save(tmp_path / "loose.png")
    (tmp_path / "cls").mkdir()
    Image.fromarray(digits[0][1]).save(tmp_path / "cls" / "a.png")
    with pytest.raises(ValueError, match="loose.png"):
        open_source(tmp_path, labels="folders")


def test_npz_memmapped_and_compressed_with_labels(tmp_path: Path, fmnist_test) -> None:
    images, labels = fmnist_test
    rgb = np.repeat(images[:50, :, :, None], 3, axis=3)
    np.savez(tmp_path / "samples.npz", rgb, labels[:50])
    src = open_source(tmp_path / "samples.npz")
    assert isinstance(src, NpzSource) and src.describe()["memmapped"]
    np.testing.assert_array_equal(src.labels, labels[:50])
    np.testing.assert_array_equal(src.load(7), rgb[7])
    np.savez_compressed(tmp_path / "packed.npz", rgb)
    packed = open_source(tmp_path / "packed.npz")
    assert not packed.describe()["memmapped"] and packed.labels is None
    np.testing.assert_array_equal(packed.load(49), rgb[49])
    with pytest.raises(KeyError, match="arr_0"):
        NpzSource(tmp_path / "samples.npz", key="images")


def test_npz_with_object_array_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "objects.npz", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle|object"):
        open_source(tmp_path / "objects.npz")


def test_zip_with_class_folders(tmp_path: Path, digits) -> None:
    images, labels = digits
    path = tmp_path / "digits.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(30):
            zf.writestr(f"digit{labels[i]}/{i:03d}.png", _png_bytes(Image.fromarray(images[i])))
        zf.writestr("README.txt", "ignored")
    src = open_source(path)
    assert isinstance(src, ZipSource) and len(src) == 30
    assert src.class_names == sorted({f"digit{v}" for v in labels[:30]})
    first = src.listing().index("digit0/000.png")
    np.testing.assert_array_equal(src.load(first)[:, :, 1], images[0])
    assert src.content_hash(0).startswith("crc32:")


def test_arrays_and_tensors_all_layouts(fmnist_test) -> None:
    images, labels = fmnist_test
    gray = images[:4]
    nhwc = np.repeat(gray[..., None], 3, axis=3)
    nchw = torch.from_numpy(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)))
    floats = nhwc.astype(np.float32) / 255.0
    for data in (gray, nhwc, nchw, floats, nchw.float() / 255.0):
        src = open_source(data, labels=labels[:4])
        assert isinstance(src, ArraySource)
        np.testing.assert_array_equal(src.load(2), nhwc[2])
    with pytest.raises(ImageDecodeError, match=r"\[0, 1\]"):
        open_source(floats * 255.0).load(0)
    with pytest.raises(ValueError, match="labels"):
        open_source(nhwc, labels=labels[:3])


def test_modes_convert_deterministically(fmnist_test) -> None:
    base = fmnist_test[0][0]
    rgb = np.stack([base, 255 - base, base // 2], axis=2)
    # grayscale -> replicated channels
    np.testing.assert_array_equal(decode_bytes(_png_bytes(Image.fromarray(base)), "g")[:, :, 1], base)
    # RGBA -> alpha dropped, colour kept (as PIL convert("RGB"), pytorch-fid and clean-fid do)
    rgba = np.dstack([rgb, np.full_like(base, 10)])
    np.testing.assert_array_equal(decode_bytes(_png_bytes(Image.fromarray(rgba, "RGBA")), "a"), rgb)
    # palette, with and without transparency, expands through the palette
    pal = Image.fromarray(rgb).quantize(colors=16)
    expected = np.asarray(pal.convert("RGB"))
    np.testing.assert_array_equal(decode_bytes(_png_bytes(pal), "p"), expected)
    pal.info["transparency"] = 0
    np.testing.assert_array_equal(decode_bytes(_png_bytes(pal), "pt"), expected)
    # 16-bit grayscale is scaled by value (PIL's own convert would clip it to white)
    sixteen = base.astype(np.uint16) * 257
    out = decode_bytes(_png_bytes(Image.fromarray(sixteen)), "16")
    np.testing.assert_array_equal(out[:, :, 0], base)
    np.testing.assert_array_equal(array_to_rgb8(sixteen, "16a")[:, :, 2], base)
    # 1-bit
    bits = Image.fromarray(base).convert("1")
    assert set(np.unique(decode_bytes(_png_bytes(bits), "1"))) <= {0, 255}


def test_corrupt_and_truncated_files_raise_named_errors(tmp_path: Path, fmnist_test) -> None:
    data = _png_bytes(Image.fromarray(fmnist_test[0][0]))
    with pytest.raises(ImageDecodeError, match="broken.png"):
        decode_bytes(b"definitely not a png", "broken.png")
    with pytest.raises(ImageDecodeError, match="cut.png"):
        decode_bytes(data[: len(data) // 2], "cut.png")


def test_empty_and_missing_sources(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no images found"):
        open_source(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_source(tmp_path / "nowhere")
    (tmp_path / "a.tar").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported"):
        open_source(tmp_path / "a.tar")
    with pytest.raises(ValueError, match="no images"):
        open_source(np.zeros((0, 8, 8, 3), np.uint8))


def test_thumbnail_center_crop(fmnist_test) -> None:
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 20:60] = 200  # the centre square
    th = make_thumbnail(img, 16)
    assert th.shape == (16, 16, 3)
    assert th.min() == 200
