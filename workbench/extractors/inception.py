"""``inception``: the FID Inception-v3 (TF 2015-12-05 graph weights, as in pytorch-fid / clean-fid / dgm-eval).

Features are **pool3** (``D = 2048``, the global average pool after ``Mixed_7c``), the
representation FID (Heusel et al., NeurIPS 2017), KID and precision/recall on Inception are
defined on. Logits are the 1008-way final linear layer (``K = 1008``; indices 1001-1007 and 0 are
unused placeholders of the TF graph), for class histograms and the Inception Score (Salimans et
al., NeurIPS 2016). By default they are **unbiased** (``pool3 @ W.T``, no bias), the convention of
the original Inception Score code (it multiplies pool3 by ``softmax/weights`` only), torch-fidelity
(``logits_unbiased``) and dgm-eval; ``logits="biased"`` adds the bias (pytorch-fid's ``fc``).

Weights: ``pt_inception-2015-12-05-6726825d.pth`` from the pytorch-fid GitHub release, the TF
graph's weights ported to PyTorch. ``weights="default"`` looks for that file in
:func:`workbench.paths.weights_dir`, then in torch hub's checkpoint cache, then downloads it with
``torch.hub.load_state_dict_from_url`` (hash-checked).

Preprocessing (option ``resize=``), per image, in the data-loader workers:

* ``"legacy"`` (default; pytorch-fid, dgm-eval, the published dgm-eval numbers): the RGB uint8
  image is converted to float ``x/255`` in [0, 1], resized to 299 x 299 with
  ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` (no antialiasing:
  downsampling large images aliases), then mapped to [-1, 1] by ``2x - 1``. The aspect ratio is
  not preserved (no crop).
* ``"clean"`` (clean-fid's ``mode="clean"``, Parmar et al., CVPR 2022): each channel is resized
  separately by PIL's bicubic filter in float mode ``'F'`` (antialiased, no uint8 quantisation)
  to 299 x 299, clipped to [0, 255], then normalised as the TF graph does, ``(x - 128) / 128``.
* ``"tf1"`` (torch-fidelity): the 0..255 values as float32 are resized to 299 x 299 by
  TensorFlow 1.x's ``resize_bilinear`` (``align_corners=False``, no half-pixel centres: output
  pixel ``i`` samples the input at ``i * in / out``, clamped at the last pixel; no antialiasing),
  then ``(x - 128) / 128``. Computed with the same float32 operations in the same order as
  torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x(method="slow")``, so the inputs are
  bit-identical; an image already 299 x 299 is unchanged.

Normalisation (option ``normalization=``, default per resize mode): ``"pytorch-fid"`` is
``2 * x/255 - 1 = (x - 127.5) / 127.5``; ``"tf"`` is ``(x - 128) / 128``, the graph's own first op,
also used by clean-fid and torch-fidelity. Peers disagree here: pytorch-fid and dgm-eval (also
dgm-eval's ``--clean_resize``) use ``2x - 1``; clean-fid uses ``(x - 128) / 128``. The two
differ by at most 1/128 per input value.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..paths import data_dir
from .base import Extractor, ExtractorOutput, Preprocessor, WeightsInfo
from .inception_net import NUM_CLASSES, POOL3_DIM, FIDInceptionV3, random_init_
from .registry import register_extractor
from .weights import (
    DEFAULT,
    NONE,
    WeightsUnavailableError,
    check_init_seed,
    file_sha256,
    find_local_weight_file,
    load_state_dict_file,
    load_weights_into,
    parse_weights_spec,
    random_init_identity,
    seeded_init,
    unavailable_message,
)

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_FILENAME}"
# torch hub convention: the file name's suffix is the first hex digits of the file's sha256.
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
FID_WEIGHTS_TAG = "pytorch-fid:pt_inception-2015-12-05-6726825d"
INPUT_SIZE = 299

RESIZE_MODES = ("legacy", "clean", "tf1")
NORMALIZATIONS = ("pytorch-fid", "tf")
DEFAULT_NORMALIZATION = {"legacy": "pytorch-fid", "clean": "tf", "tf1": "tf"}
LOGITS_MODES = ("unbiased", "biased")


def check_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Return ``image`` if it is an ``H x W x 3`` uint8 array, else raise a ValueError that says why."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(
            f"image must be an RGB uint8 array of shape (H, W, 3), got {desc}; decode images with "
            "workbench.images (grayscale and RGBA are converted to RGB there)"
        )
    return image


def resize_bilinear_tf1(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TensorFlow 1.x ``resize_bilinear`` (``align_corners=False``, ``half_pixel_centers=False``).

    Args:
        image: ``B x C x H x W`` float tensor (any value range; torch-fidelity passes 0..255).
        size: ``(out_h, out_w)``.

    Returns:
        ``B x C x out_h x out_w``, same dtype. Output pixel ``(i, j)`` interpolates the input
        at ``(i * H / out_h, j * W / out_w)`` between its floor and the next pixel (clamped at the
        border). The float32 operations and their order are those of torch-fidelity's
        ``interpolate_bilinear_2d_like_tensorflow1x(method="slow")``, so results are bit-identical.
    """
    if image.ndim != 4 or not torch.is_floating_point(image):
        raise ValueError(f"image must be a B x C x H x W float tensor, got {image.dtype} {tuple(image.shape)}")
    out_h, out_w = int(size[0]), int(size[1])
    in_h, in_w = image.shape[2], image.shape[3]

    def axis(n_out: int, n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = torch.arange(0, n_out, 1, dtype=image.dtype) * torch.tensor(n_in / n_out, dtype=torch.float32)
        lo = pos.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, pos - lo.float()

    x_lo, x_hi, dx = axis(out_w, in_w)
    y_lo, y_hi, dy = axis(out_h, in_h)
    rows_lo, rows_hi = image[:, :, y_lo, :], image[:, :, y_hi, :]
    in_00, in_01 = rows_lo[:, :, :, x_lo], rows_lo[:, :, :, x_hi]
    in_10, in_11 = rows_hi[:, :, :, x_lo], rows_hi[:, :, :, x_hi]
    top = in_00 + (in_01 - in_00) * dx.view(1, 1, 1, out_w)
    bottom = in_10 + (in_11 - in_10) * dx.view(1, 1, 1, out_w)
    return top + (bottom - top) * dy.view(1, 1, out_h, 1)


@dataclass
class InceptionPreprocessor(Preprocessor):
    """RGB uint8 ``H x W x 3`` -> ``3 x 299 x 299`` float32 input of the FID Inception.

    Args:
        resize: ``"legacy"`` (torch bilinear, pytorch-fid / dgm-eval), ``"clean"`` (PIL bicubic
            per channel in float mode, clean-fid) or ``"tf1"`` (TensorFlow 1 bilinear on 0..255,
            torch-fidelity). See the module docstring.
        normalization: ``"pytorch-fid"`` (``x/127.5 - 1``) or ``"tf"`` (``(x - 128)/128``).
        size: output side (299 for the real network).
    """

    resize: str = "legacy"
    normalization: str = "pytorch-fid"
    size: int = INPUT_SIZE

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")

    def resized(self, image: np.ndarray) -> np.ndarray:
        """The resized image ``3 x size x size`` float32 in [0, 255] scale, before normalisation.

        ``"legacy"`` resizes ``x/255`` (exactly as pytorch-fid does) and returns it multiplied
        back by 255 only for inspection; :meth:`__call__` does not round-trip through it.
        """
        if self.resize == "legacy":
            return self._legacy_unit(image) * np.float32(255.0)
        if self.resize == "tf1":
            return self._tf1(image)
        return self._clean(image)

    def _tf1(self, image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
        return resize_bilinear_tf1(x, (self.size, self.size))[0].numpy()

    def _legacy_unit(self, image: np.ndarray) -> np.ndarray:
        # float32 copy in numpy (uint8 -> float32 is exact): a writable array, so torch.from_numpy
        # does not warn about read-only inputs (decoded images, memmaps); same values as before
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1).div(255)
        x = F.interpolate(x[None], size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x[0].numpy()

    def _clean(self, image: np.ndarray) -> np.ndarray:
        out = np.empty((3, self.size, self.size), dtype=np.float32)
        for c in range(3):
            channel = Image.fromarray(image[:, :, c].astype(np.float32))  # mode 'F'
            resized = channel.resize((self.size, self.size), resample=Image.Resampling.BICUBIC)
            out[c] = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 255.0)
        return out

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = check_rgb_uint8(image)
        if self.resize == "legacy":
            unit = self._legacy_unit(image)
            if self.normalization == "pytorch-fid":
                return 2 * unit - 1  # pytorch-fid's own expression, for bit-identical inputs
            return ((unit * np.float32(255.0)) - np.float32(128.0)) / np.float32(128.0)
        pixels = self._tf1(image) if self.resize == "tf1" else self._clean(image)
        if self.normalization == "tf":
            return (pixels - np.float32(128.0)) / np.float32(128.0)
        return 2 * (pixels / np.float32(255.0)) - 1

    def describe(self) -> dict[str, Any]:
        if self.resize == "legacy":
            resize = (
                "torch F.interpolate bilinear, align_corners=False, no antialias, on x/255 (pytorch-fid / dgm-eval)"
            )
        elif self.resize == "tf1":
            resize = "TensorFlow 1 resize_bilinear, align_corners=False, no antialias, on 0..255 (torch-fidelity)"
        else:
            resize = "PIL bicubic per channel in float mode 'F', clipped to [0, 255] (clean-fid mode='clean')"
        norm = (
            "x/127.5 - 1 (2*x/255 - 1, pytorch-fid)"
            if self.normalization == "pytorch-fid"
            else "(x - 128)/128 (TF graph, clean-fid)"
        )
        return {
            "resize_mode": self.resize,
            "resize": resize,
            "size": self.size,
            "crop": "none (aspect ratio not preserved)",
            "value_range": "[-1, 1]" if self.normalization == "pytorch-fid" else "[-1, 127/128]",
            "normalisation": norm,
        }


_CLASS_LINE = re.compile(r"^(\d+):\s?(.*)$")


def parse_class_names(text: str, num_classes: int = NUM_CLASSES) -> list[str]:
    """Parse the ``index: name`` YAML of the shipped ``imagenet-labels.yml`` (continuation lines indented).

    Raises:
        ValueError: indices are not exactly ``0..num_classes-1``.
    """
    names: dict[int, str] = {}
    last: int | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _CLASS_LINE.match(line)
        if match:
            last = int(match.group(1))
            names[last] = match.group(2).strip()
        elif line[:1].isspace() and last is not None:
            names[last] = f"{names[last]} {line.strip()}"
        else:
            raise ValueError(f"cannot parse class-name line {line!r}")
    if sorted(names) != list(range(num_classes)):
        raise ValueError(f"expected class indices 0..{num_classes - 1}, got {len(names)} entries")
    return [names[i] for i in range(num_classes)]


def inception_class_names() -> list[str]:
    """Names of the 1008 outputs of the FID Inception, from the shipped ``imagenet-labels.yml``.

    Read with ``importlib.resources`` from ``workbench/data/`` (``$WORKBENCH_DATA_DIR`` overrides it).
    """
    resource = data_dir() / "imagenet-labels.yml"
    return parse_class_names(resource.read_text(encoding="utf-8"))


def _load_published_file(path: Path, source: str) -> tuple[dict[str, torch.Tensor], WeightsInfo]:
    digest = file_sha256(path)
    if not digest.startswith(FID_WEIGHTS_SHA256_PREFIX):
        raise WeightsUnavailableError(
            f"{path} is named like the published FID Inception weights but its sha256 ({digest[:16]}...) "
            f"does not start with {FID_WEIGHTS_SHA256_PREFIX}; the file is corrupt or not the published "
            f"one. Delete it and download {FID_WEIGHTS_URL} again"
        )
    state = load_state_dict_file(path)
    return state, WeightsInfo(spec=DEFAULT, pretrained=True, identity=FID_WEIGHTS_TAG, source=source)


def resolve_fid_weights(weights: str, seed: int = 0) -> tuple[dict[str, torch.Tensor] | None, WeightsInfo]:
    """Find the weights named by ``weights`` (``"default"``, ``"none"`` or a path).

    Returns ``(state_dict, info)``; ``state_dict`` is None for ``"none"`` (random init).
    A local file whose sha256 starts with the published prefix ``6726825d`` is recognised as the
    published weights (``pretrained=True``, identity ``pytorch-fid:pt_inception-2015-12-05-6726825d``);
    any other file is identified by its ``sha256:<hex>`` and labelled not pretrained.

    Raises:
        WeightsUnavailableError: ``"default"`` and the file is neither local nor downloadable.
    """
    spec = parse_weights_spec(weights, extractor="inception")
    if spec.kind == NONE:
        return None, WeightsInfo(spec=NONE, pretrained=False, identity=random_init_identity(seed), source="random init")
    if spec.kind == "file":
        state = load_state_dict_file(spec.path)
        digest = file_sha256(spec.path)
        if digest.startswith(FID_WEIGHTS_SHA256_PREFIX):
            info = WeightsInfo(spec=spec.raw, pretrained=True, identity=FID_WEIGHTS_TAG, source=str(spec.path))
        else:
            info = WeightsInfo(spec=spec.raw, pretrained=False, identity=f"sha256:{digest}", source=str(spec.path))
        return state, info
    hub_cached = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILENAME
    for local in (find_local_weight_file(FID_WEIGHTS_FILENAME), hub_cached):
        if local is not None and local.is_file():
            return _load_published_file(local, str(local))
    try:
        state = torch.hub.load_state_dict_from_url(
            FID_WEIGHTS_URL, map_location="cpu", progress=False, check_hash=True, weights_only=True
        )
    except Exception as exc:  # network errors come in many types (URLError, OSError, HTTPError, ...)
        raise WeightsUnavailableError(
            unavailable_message("inception", FID_WEIGHTS_FILENAME, FID_WEIGHTS_URL)
            + f" (download error: {type(exc).__name__}: {exc})"
        ) from exc
    return dict(state), WeightsInfo(spec=DEFAULT, pretrained=True, identity=FID_WEIGHTS_TAG, source=FID_WEIGHTS_URL)


@dataclass(repr=False, eq=False)
class InceptionExtractor(Extractor):
    """FID Inception-v3: pool3 features ``B x 2048`` and 1008-way logits."""

    net: FIDInceptionV3 | None = None
    logits_mode: str = "unbiased"

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        feats = self.net.pool3(batch)
        logits = F.linear(feats, self.net.fc.weight, self.net.fc.bias if self.logits_mode == "biased" else None)
        return ExtractorOutput(features=feats, logits=logits)

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["logits"] = (
            "fc weight only, pool3 @ W.T (Inception Score convention)"
            if self.logits_mode == "unbiased"
            else "fc with bias, pool3 @ W.T + b"
        )
        return out


@register_extractor("inception", description="FID Inception-v3 (TF 2015 weights): pool3 2048-d + 1008 logits")
def create_inception(
    weights: str = "default",
    resize: str = "legacy",
    normalization: str | None = None,
    logits: str = "unbiased",
    seed: int = 0,
) -> InceptionExtractor:
    """The FID Inception-v3 of pytorch-fid / clean-fid / dgm-eval.

    Args:
        weights: ``"default"`` (``pt_inception-2015-12-05-6726825d.pth``: weights_dir(), torch hub
            cache, else download), a local ``.pth``/``.safetensors`` path, or ``"none"``.
        resize: ``"legacy"`` (default; torch bilinear as pytorch-fid and dgm-eval), ``"clean"``
            (PIL bicubic in float, as clean-fid) or ``"tf1"`` (TensorFlow 1 bilinear, as torch-fidelity).
        normalization: ``"pytorch-fid"`` (``x/127.5 - 1``) or ``"tf"`` (``(x-128)/128``); default
            ``"pytorch-fid"`` for legacy and ``"tf"`` for clean and tf1, so each mode matches its peer.
        logits: ``"unbiased"`` (default, IS convention) or ``"biased"``.
        seed: seed of the random initialisation when ``weights="none"``.
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    normalization = DEFAULT_NORMALIZATION[resize] if normalization is None else normalization
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if logits not in LOGITS_MODES:
        raise ValueError(f"logits must be one of {LOGITS_MODES}, got {logits!r}")
    seed = check_init_seed(seed)

    state, info = resolve_fid_weights(weights, seed=seed)
    with seeded_init(seed):
        net = FIDInceptionV3()
        if state is None:
            random_init_(net)
    if state is not None:
        load_weights_into(net, state, path=info.source, extractor="inception")
    net.eval().requires_grad_(False)

    try:
        names = inception_class_names()
    except (FileNotFoundError, ValueError) as exc:
        warnings.warn(f"Inception class names unavailable ({exc}); class_names is None", stacklevel=2)
        names = None

    variant = f"fid-inception-v3/{resize}"
    if normalization != DEFAULT_NORMALIZATION[resize]:
        variant += f"/{normalization}-norm"
    return InceptionExtractor(
        name="inception",
        variant=variant,
        dim=POOL3_DIM,
        weights=info,
        preprocessor=InceptionPreprocessor(resize=resize, normalization=normalization),
        num_classes=NUM_CLASSES,
        class_names=names,
        feature_layer="pool3 (global average pool after Mixed_7c, 2048-d)",
        heatmap_layer="Mixed_7c",  # 2048 x 8 x 8 at 299 px; dgm-eval's 'blocks.3.2' is the same block
        net=net,
        logits_mode=logits,
    )
