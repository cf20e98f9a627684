"""What the metric looks at: Grad-CAM style sensitivity heatmaps for FD and KD.

:func:`metric_heatmaps` shows, for each of a few generated images, *where in the image* the
extractor sees what moves the metric, following Kynkäänniemi et al. 2023 ("The Role of ImageNet
Classes in Fréchet Inception Distance", ICLR 2023, Sec. 3) as implemented by dgm-eval's
``--heatmaps`` (Stein et al. 2023, "Exposing flaws of generative model evaluation metrics and
their unfair treatment of diffusion models", NeurIPS 2023; ``dgm_eval/heatmaps/gradcam.py``).

Method
------
Image ``i`` is one member of the generated set ``G`` (``n`` rows; see ``generated`` in
:func:`metric_heatmaps`). Its feature ``f_i`` enters the metric through the generated statistics
only, so ``M_i(f_i) = metric(reference, G)`` as a function of that one row, the others fixed.

1. The metric's gradient ``g_i = dM/df_i`` (``D``), in closed form, float64:

   * FD (Dowson & Landau 1982; Heusel et al. 2017), ``FD = ||mu - mu_r||^2 + Tr S_r + Tr S
     - 2 Tr (S_r^{1/2} S S_r^{1/2})^{1/2}`` with the ``ddof=1`` covariance ``S`` of ``G``:
     ``g_i = (2/n) (mu - mu_r) + (2/(n-1)) (I - T) (f_i - mu)``,
     ``T = F A^{-1/2} F^T``, ``S_r = F F^T``, ``A = F^T S F`` (the optimal-transport map between
     the two Gaussians), from :meth:`workbench.analysis.attribution.FrechetDecomposition.gradients`:
     one eigen-decomposition for all images instead of one differentiable ``torch.linalg.eig``
     per image as dgm-eval does. It is the exact derivative of dgm-eval's ``wasserstein2_loss``
     at dgm-eval's rank-one update of the leave-one-out statistics (``mean = (n-1)/n mean_{-i} +
     f/n``, ``cov = (n-2)/(n-1) cov_{-i} + (f - mean_{-i})(f - mean_{-i})^T / n``, which are the
     statistics of ``G``), without dgm-eval's ``eps = 1e-12`` inside the square roots. Directions
     where ``A`` is zero to rounding (fewer generated samples than dimensions) are left out: the
     square root has no derivative there.
   * KD: the unbiased MMD^2 estimate with KID's kernel ``k(x, y) = (x.y / D + 1)^3`` (Bińkowski
     et al. 2018) on the *whole* sets (no subsets),
     ``MMD^2 = sum_{a != b} k(g_a, g_b) / (n(n-1)) + sum_{j != l} k(r_j, r_l) / (r(r-1))
     - 2 sum_{a, j} k(g_a, r_j) / (n r)``, so
     ``g_i = 2/(n(n-1)) sum_{b != i} dk(f_i, g_b)/df_i - 2/(n r) sum_j dk(f_i, r_j)/df_i``,
     ``dk(x, y)/dx = 3 (x.y/D + 1)^2 y / D``.

2. Back-propagation of ``g_i`` through the extractor to the activations ``A`` (``C x h x w``) of
   its ``heatmap_layer`` (a vector-Jacobian product, ``torch.autograd.grad(features, A,
   grad_outputs=g)``): ``dM/dA``. Images are batched: ``M_i`` depends on image ``i`` only (the
   other rows fixed), so one backward pass of ``sum_i <g_i, f_i>`` gives every image's own
   gradient. This relies on the network treating batch entries independently (eval mode).

3. Channel weights ``w_c = mean_{h, w} (dM/dA_c)^2`` (the *squared* gradient, Kynkäänniemi et
   al.'s choice, as dgm-eval's ``weights = np.mean(gradients ** 2, axis=(2, 3))``), and
   ``map = ReLU(sum_c w_c A_c)`` (``h x w``), upsampled bilinearly (``align_corners=False``) to the
   image's own ``H x W``.

   dgm-eval differs in three display conventions, not followed here: it takes no ReLU and
   min-max scales each map to [0, 1] (so the most negative value becomes 0), it negates the
   activations of its ViT layers (``MODEL_TO_TRANSFORM_MAP``: ``-x`` for CLIP and DINOv2), and it
   resizes with Lanczos to the model's input size. Here maps keep their scale (comparable across
   images of one call) and are non-negative.

``delta[i] = M(reference, G) - M(reference, G without row i)``: how much the metric rises
because of image ``i`` (dgm-eval's ``delta_fid = loss - original_fid``), exact (FD: closed-form
mean and trace terms, the trace square root of a rank-one downdate by quadrature, ~1e-13
relative, :meth:`~workbench.analysis.attribution.FrechetDecomposition.removal_exact`; KD: exact
kernel sums).

Maps assume that the extractor's preprocessing maps the whole image onto its input (a resize,
no crop); a centre-cropping preprocessor (CLIP's default ``resize_mode="shortest"``) is accepted
only for square images.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from workbench.analysis.attribution import frechet_decomposition
from workbench.analysis.result import AnalysisResult
from workbench.cache.reader import EmbeddingCache
from workbench.extractors.base import Extractor
from workbench.images.source import ImageSource
from workbench.metrics.frechet import GaussianStats
from workbench.metrics.validation import as_features
from workbench.progress import ProgressReporter

HEATMAP_METRICS: tuple[str, ...] = ("fd", "kd")
#: KID's polynomial kernel ``(gamma x.y + coef)^degree`` with ``gamma = 1/D``.
KD_DEGREE = 3
KD_COEF = 1.0
_KD_BLOCK_ROWS = 2048

# "inferno"-like colour map anchors (RGB, 0..255) at 0, 0.25, 0.5, 0.75, 1.
_COLORMAP = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
    dtype=np.float64,
)


class HeatmapResult(AnalysisResult):
    """Sensitivity heatmaps of one metric for ``N`` images (result of :func:`metric_heatmaps`).

    Main table ``"images"``, one row per image in input order: ``index``, ``delta`` (metric with
    the image minus without it), ``map_max`` and ``map_mean`` (of the map, in activation x
    squared-gradient units), ``peak_y`` / ``peak_x`` (pixel of the map's maximum).

    Attributes:
        maps: ``N x H x W`` float32, non-negative, at the images' resolution.
        delta: ``(N,)`` float64.
        images: the ``N x H x W x 3`` uint8 images (for :meth:`overlay`).
        metric: ``"fd"`` or ``"kd"``. value: the metric on the whole generated set.
        layer: the explained layer's dotted name. extractor: the extractor's registry name.
        grid: ``(h, w)`` of the layer's activation map.
    """

    def __init__(
        self,
        *,
        maps: np.ndarray,
        delta: np.ndarray,
        images: np.ndarray,
        metric: str,
        value: float,
        layer: str,
        extractor: str,
        grid: tuple[int, int],
        n_generated: int,
    ) -> None:
        flat = maps.reshape(maps.shape[0], -1)
        peak = flat.argmax(axis=1) if flat.size else np.zeros(0, dtype=np.int64)
        frame = pd.DataFrame(
            {
                "index": np.arange(maps.shape[0], dtype=np.int64),
                "delta": delta,
                "map_max": flat.max(axis=1) if flat.size else np.zeros(0),
                "map_mean": flat.mean(axis=1) if flat.size else np.zeros(0),
                "peak_y": peak // maps.shape[2],
                "peak_x": peak % maps.shape[2],
            }
        )
        summary = (
            f"{metric.upper()} = {value:.6g} on {n_generated} generated samples; maps of {extractor} layer "
            f"{layer!r} ({grid[0]} x {grid[1]}) upsampled to {maps.shape[1]} x {maps.shape[2]} px; "
            "delta = metric with the image minus without it"
        )
        super().__init__({"images": frame}, title=f"{metric.upper()} sensitivity heatmaps", summary=summary)
        self.maps = maps
        self.delta = delta
        self.images = images
        self.metric = metric
        self.value = float(value)
        self.layer = layer
        self.extractor = extractor
        self.grid = grid

    def __len__(self) -> int:
        return int(self.maps.shape[0])

    def overlay(self, i: int, alpha: float = 0.5) -> np.ndarray:
        """Image ``i`` blended with its map in colour: ``H x W x 3`` uint8.

        The map is scaled by its own maximum to [0, 1], coloured (dark purple = 0 to pale yellow
        = max, an inferno-like ramp) and blended as ``(1 - alpha) image + alpha colour``. An
        all-zero map gives the image unchanged.

        Raises:
            IndexError: ``i`` is not an image index. ValueError: ``alpha`` not in [0, 1].
        """
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -len(self) <= i < len(self):
            raise IndexError(f"image index {i!r} out of range for {len(self)} images")
        return blend(self.images[i], self.maps[i], alpha)

    def save(
        self,
        path: str | os.PathLike,
        *,
        ids: Sequence[str] | None = None,
        alpha: float = 0.5,
        columns: int = 8,
        cell_px: int = 128,
    ) -> Path:
        """Write the overlays as a PNG grid (``.png``) or a self-contained HTML page (``.html``).

        Each cell is image ``i`` blended with its map (:meth:`overlay`, ``alpha``), scaled to
        ``cell_px`` pixels wide (nearest-neighbour), captioned with its id (``ids``, default
        ``#i``) and ``delta``. The HTML page shows each image and its overlay side by side, with
        the summary line; images are inlined as ``data:`` PNGs, so it opens offline. The file is
        written atomically (a temporary file, then renamed).

        Raises:
            ValueError: a suffix other than ``.png``, ``.html`` or ``.htm``; ``ids`` of the wrong
                length; ``columns`` or ``cell_px`` below 1.
        """
        out = Path(path).expanduser()
        suffix = out.suffix.lower()
        if suffix not in (".png", ".html", ".htm"):
            raise ValueError(
                f"{out}: the heatmap file must end in .png (an image grid) or .html (a page); got {suffix!r}"
            )
        if columns < 1 or cell_px < 1:
            raise ValueError(f"columns and cell_px must be >= 1; got {columns} and {cell_px}")
        names = [f"#{i}" for i in range(len(self))] if ids is None else [str(x) for x in ids]
        if len(names) != len(self):
            raise ValueError(f"ids must name each of the {len(self)} images; got {len(names)}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        if suffix == ".png":
            _grid_image(self, names, alpha, columns, cell_px).save(tmp, format="PNG")
        else:
            tmp.write_text(_html_page(self, names, alpha, cell_px), encoding="utf-8")
        tmp.replace(out)
        return out


def _scaled(image: np.ndarray, px: int) -> Image.Image:
    """``H x W x 3`` uint8 -> PIL image ``px`` wide (nearest-neighbour, aspect kept)."""
    h, w = image.shape[:2]
    return Image.fromarray(image).resize((px, max(1, round(h * px / w))), Image.Resampling.NEAREST)


def _grid_image(result: HeatmapResult, names: list[str], alpha: float, columns: int, px: int) -> Image.Image:
    cols = min(columns, len(result))
    rows = -(-len(result) // cols)
    cell_h = _scaled(result.images[0], px).height
    caption = 26
    sheet = Image.new("RGB", (cols * (px + 4) + 4, rows * (cell_h + caption + 4) + 24), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), f"{result.metric.upper()} sensitivity, {result.extractor} {result.layer}", fill=(0, 0, 0))
    for i in range(len(result)):
        x = 4 + (i % cols) * (px + 4)
        y = 24 + (i // cols) * (cell_h + caption + 4)
        sheet.paste(_scaled(result.overlay(i, alpha), px), (x, y))
        draw.text((x, y + cell_h + 1), names[i][-int(px / 6) :], fill=(0, 0, 0))
        draw.text((x, y + cell_h + 13), f"d={result.delta[i]:.3g}", fill=(90, 90, 90))
    return sheet


def _png_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _html_page(result: HeatmapResult, names: list[str], alpha: float, px: int) -> str:
    cells = []
    for i in range(len(result)):
        orig = _png_uri(_scaled(result.images[i], px))
        over = _png_uri(_scaled(result.overlay(i, alpha), px))
        cells.append(
            f"<figure class='wb-heatmap-cell' data-delta='{float(result.delta[i])!r}'><img src='{orig}' width='{px}'>"
            f"<img src='{over}' width='{px}'><figcaption>{html.escape(names[i])}<br>delta "
            f"{result.delta[i]:.4g}</figcaption></figure>"
        )
    title = f"{result.metric.upper()} sensitivity heatmaps ({result.extractor})"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font:13px sans-serif;margin:16px}}"
        ".wb-heatmap-cells{display:flex;flex-wrap:wrap;gap:8px}.wb-heatmap-cell{margin:0;text-align:center;"
        "font-size:11px}.wb-heatmap-cell img{image-rendering:pixelated;margin:1px}</style></head><body>"
        f"<h1 style='font-size:18px'>{html.escape(title)}</h1><p>{html.escape(result.summary)}. Each image, then "
        "the image under its map (dark = 0, pale yellow = the map's maximum; each map scaled by its own "
        f"maximum).</p><div class='wb-heatmap-cells'>{''.join(cells)}</div></body></html>"
    )


def blend(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image`` (``H x W x 3`` uint8) under ``heat`` (``H x W``, non-negative) in colour.

    The map is scaled by its own maximum to [0, 1], coloured (:func:`colorize`) and blended as
    ``(1 - alpha) image + alpha colour``; an all-zero map gives the image unchanged.

    Raises:
        ValueError: ``alpha`` not in [0, 1], or shapes that do not match.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    if image.shape[:2] != heat.shape or image.ndim != 3:
        raise ValueError(f"image {image.shape} and map {heat.shape} must be H x W x 3 and H x W")
    values = heat.astype(np.float64)
    top = float(values.max()) if values.size else 0.0
    if top <= 0.0:
        return np.array(image, dtype=np.uint8, copy=True)
    out = (1.0 - alpha) * image.astype(np.float64) + alpha * colorize(values / top)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def colorize(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (any shape ``S``) -> ``S x 3`` float64 RGB in [0, 255], inferno-like ramp."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(_COLORMAP) - 1)
    lo = np.minimum(np.floor(v).astype(np.int64), len(_COLORMAP) - 2)
    frac = (v - lo)[..., None]
    return _COLORMAP[lo] * (1.0 - frac) + _COLORMAP[lo + 1] * frac


# --------------------------------------------------------------------------- inputs


def load_images(source: Any, limit: int | None = None) -> tuple[np.ndarray, list[str]]:
    """The images of an image source (a folder, ``.zip``, ``.npz``, array or
    :class:`~workbench.images.ImageSource`) as ``N x H x W x 3`` uint8, and their ids.

    ``limit``: the first ``limit`` images in the source's order. The images must all have one
    size (heatmaps are stacked per image); an unreadable image is an error naming it.

    Raises:
        FileNotFoundError, ValueError: as :func:`workbench.images.open_source`; images of
            different sizes (naming two of them).
    """
    from workbench.images import open_source

    src = open_source(source)
    n = len(src) if limit is None else min(len(src), int(limit))
    if n < 1:
        raise ValueError(f"image source {source!r} holds no images")
    first = src.load(0)
    out = np.empty((n, *first.shape), dtype=np.uint8)
    out[0] = first
    ids = [src.sample_id(0)]
    for i in range(1, n):
        image = src.load(i)
        if image.shape != first.shape:
            raise ValueError(
                f"heatmaps need images of one size: {src.sample_id(0)} is {first.shape[1]} x {first.shape[0]} px "
                f"but {src.sample_id(i)} is {image.shape[1]} x {image.shape[0]} px; resize them or pass fewer "
                "(a limit)"
            )
        out[i] = image
        ids.append(src.sample_id(i))
    return out, ids


def _cache_images(cache: EmbeddingCache, indices: Any) -> tuple[np.ndarray, np.ndarray]:
    """Thumbnails of rows ``indices`` (all rows when None) of a cache, and those rows."""
    if cache.thumbnails is None:
        raise ValueError(
            f"cache {cache.path} stores no thumbnails (extracted with --thumbnails 0), so its images cannot be "
            "explained; pass the images themselves, or re-extract it with --thumbnails 64"
        )
    rows = np.arange(len(cache)) if indices is None else np.asarray(indices)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer) or rows.size == 0:
        raise ValueError(f"indices must be a non-empty list of rows of the cache; got {indices!r}")
    if rows.min() < 0 or rows.max() >= len(cache):
        raise ValueError(f"indices must be rows of the cache (0 to {len(cache) - 1}); got {indices!r}")
    return np.asarray(cache.thumbnails[rows]), rows.astype(np.int64)


def _as_images(images: Any) -> np.ndarray:
    if isinstance(images, (str, os.PathLike)):
        return load_images(images)[0]
    if isinstance(images, ImageSource):
        return load_images(images)[0]
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is empty")
        shapes = {getattr(im, "shape", None) for im in images}
        if len(shapes) != 1:
            raise ValueError(f"images must all have the same size; got shapes {sorted(map(str, shapes))}")
        for k, im in enumerate(images):
            if not isinstance(im, np.ndarray) or im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(
                    f"images[{k}] must be an H x W x 3 uint8 array; got "
                    f"{getattr(im, 'dtype', type(im).__name__)} of shape {getattr(im, 'shape', None)}"
                )
        return np.stack(images)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(
            "images must be an N x H x W x 3 uint8 array (or a list of H x W x 3 uint8 arrays of one size); got "
            f"{getattr(images, 'dtype', type(images).__name__)} of shape {getattr(images, 'shape', None)}"
        )
    if images.shape[0] == 0:
        raise ValueError("images is empty")
    return images


def _reference(reference: Any, metric: str) -> tuple[np.ndarray | None, GaussianStats | None]:
    """``(features, None)`` or ``(None, stats)`` of the reference set."""
    if isinstance(reference, EmbeddingCache):
        return as_features(reference.features, "reference", min_samples=2), None
    mu = sigma = None
    if isinstance(reference, GaussianStats):
        mu, sigma = reference.mean, reference.cov
    elif isinstance(reference, tuple) and len(reference) == 2:
        mu, sigma = reference
    elif isinstance(reference, Mapping) and "mu" in reference and "sigma" in reference:
        mu, sigma = reference["mu"], reference["sigma"]
    elif hasattr(reference, "mu") and hasattr(reference, "sigma"):
        mu, sigma = reference.mu, reference.sigma
    if mu is None:
        return as_features(reference, "reference", min_samples=2), None
    if metric != "fd":
        raise ValueError(
            f"metric={metric!r} needs the reference features (an N x D array or a cache), not Gaussian statistics"
        )
    mu_arr = np.asarray(mu, dtype=np.float64)
    sigma_arr = np.asarray(sigma, dtype=np.float64)
    d = mu_arr.shape[0] if mu_arr.ndim == 1 else -1
    if mu_arr.ndim != 1 or sigma_arr.shape != (d, d):
        raise ValueError(
            f"reference statistics must be mu (D,) and sigma (D, D); got shapes {mu_arr.shape} and {sigma_arr.shape}"
        )
    if not (np.isfinite(mu_arr).all() and np.isfinite(sigma_arr).all()):
        raise ValueError("reference statistics hold NaN or inf values")
    sigma_arr = 0.5 * (sigma_arr + sigma_arr.T)
    return None, GaussianStats(mean=mu_arr, cov=sigma_arr, n=0)


def _resolve_extractor(extractor: Extractor | str, weights: str) -> Extractor:
    if isinstance(extractor, Extractor):
        return extractor
    if isinstance(extractor, str):
        from workbench.extractors import create_extractor

        return create_extractor(extractor, weights=weights)
    raise TypeError(f"extractor must be an Extractor or a registered name; got {type(extractor).__name__}")


def heatmap_module(extractor: Extractor, layer: str | None = None) -> tuple[str, torch.nn.Module]:
    """``(name, module)`` of the layer whose activations the heatmaps explain.

    Raises:
        ValueError: the extractor names no ``heatmap_layer`` (and ``layer`` is None), has no
            modules, or the name is not a submodule of its first module.
    """
    name = layer if layer is not None else extractor.heatmap_layer
    if not name:
        raise ValueError(
            f"extractor {extractor.name!r} does not support heatmaps: it names no heatmap_layer. Set its "
            "`heatmap_layer` field (or pass layer=) to the dotted name of a submodule of its first module "
            "(extractor._modules()[0]) whose output is B x C x h x w, or ViT tokens B x (prefix + h*w) x C"
        )
    modules = extractor._modules()
    if not modules:
        raise ValueError(
            f"extractor {extractor.name!r} has no torch modules (_modules() is empty), so layer {name!r} "
            "cannot be found; heatmaps need a neural network extractor"
        )
    root = modules[0]
    try:
        return name, root.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in root.named_modules() if n]
        hint = ", ".join(names[-8:])
        raise ValueError(
            f"extractor {extractor.name!r} has no layer {name!r} in its first module "
            f"({type(root).__name__}); its last layers are: {hint}"
        ) from None


def _to_grid(acts: torch.Tensor, root: torch.nn.Module, layer: str) -> torch.Tensor:
    """Layer output -> ``B x C x h x w`` (ViT tokens: prefix dropped, square grid)."""
    if acts.ndim == 4:
        return acts
    if acts.ndim == 3:
        tokens = acts.shape[1]
        prefix = getattr(root, "num_prefix_tokens", None)
        if not isinstance(prefix, int):
            prefix = tokens - math.isqrt(tokens) ** 2
        side = math.isqrt(tokens - prefix)
        if prefix < 0 or side * side != tokens - prefix:
            raise ValueError(
                f"layer {layer!r} gives {tokens} tokens; {prefix} prefix tokens leave no square grid of patches"
            )
        grid = acts[:, prefix:, :]
        return grid.transpose(1, 2).reshape(acts.shape[0], acts.shape[2], side, side)
    raise ValueError(
        f"layer {layer!r} gives activations of shape {tuple(acts.shape)}; heatmaps need B x C x h x w "
        "or ViT tokens B x (prefix + h*w) x C"
    )


# --------------------------------------------------------------------------- metric gradients


def _kd_terms(g: np.ndarray, r: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """KD (unbiased MMD^2, KID kernel) of generated ``g`` against reference ``r``: the gradient with
    respect to the rows ``rows`` of ``g`` (``m x D``), their leave-one-out deltas (``m``) and the value."""
    n, dim = g.shape
    nr = r.shape[0]
    gamma = 1.0 / dim

    def kern(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (gamma * (a @ b.T) + KD_COEF) ** KD_DEGREE

    def total(a: np.ndarray, b: np.ndarray | None) -> float:
        out = 0.0
        for start in range(0, a.shape[0], _KD_BLOCK_ROWS):
            block = a[start : start + _KD_BLOCK_ROWS]
            k = kern(block, a if b is None else b)
            out += float(k.sum())
            if b is None:
                out -= float(np.einsum("ii->", k[:, start : start + block.shape[0]]))
        return out

    s_gg, s_rr, s_gr = total(g, None), total(r, None), total(g, r)
    value = s_gg / (n * (n - 1)) + s_rr / (nr * (nr - 1)) - 2.0 * s_gr / (n * nr)
    f = g[rows]
    s_fg = gamma * (f @ g.T)  # m x n
    s_fr = gamma * (f @ r.T)
    k_fg = (s_fg + KD_COEF) ** KD_DEGREE
    k_fg[np.arange(len(rows)), rows] = 0.0  # b != i
    row_gg = k_fg.sum(axis=1)
    row_gr = ((s_fr + KD_COEF) ** KD_DEGREE).sum(axis=1)
    dk_fg = KD_DEGREE * gamma * (s_fg + KD_COEF) ** (KD_DEGREE - 1)
    dk_fg[np.arange(len(rows)), rows] = 0.0
    dk_fr = KD_DEGREE * gamma * (s_fr + KD_COEF) ** (KD_DEGREE - 1)
    grad = 2.0 / (n * (n - 1)) * (dk_fg @ g) - 2.0 / (n * nr) * (dk_fr @ r)
    without = (
        (s_gg - 2.0 * row_gg) / ((n - 1) * (n - 2)) + s_rr / (nr * (nr - 1)) - 2.0 * (s_gr - row_gr) / ((n - 1) * nr)
    )
    return grad, value - without, value


# --------------------------------------------------------------------------- public API


def metric_heatmaps(
    images: np.ndarray | Sequence[np.ndarray] | ImageSource | EmbeddingCache | str | os.PathLike,
    extractor: Extractor | str,
    reference: Any,
    *,
    generated: Any = None,
    indices: Sequence[int] | np.ndarray | None = None,
    metric: str = "fd",
    layer: str | None = None,
    weights: str = "default",
    batch_size: int = 32,
    progress: Any = True,
) -> HeatmapResult:
    """Where in each image the extractor sees what changes FD or KD (Grad-CAM style; module docstring).

    Args:
        images: ``N x H x W x 3`` uint8 array, a list of ``H x W x 3`` uint8 arrays of one size, an
            image source (a folder, ``.zip`` or ``.npz`` path, or an
            :class:`~workbench.images.ImageSource`; every image, of one size: :func:`load_images`),
            or an :class:`~workbench.cache.EmbeddingCache` with thumbnails: the thumbnails of its
            rows ``indices`` (all rows when None), explained as members of that cache's set
            (``generated`` defaults to the cache, ``indices`` to those rows). Maps are at the
            thumbnails' resolution; a thumbnail smaller than the original image is what is
            explained (its features replace the row's cached ones in ``G``).
        extractor: an :class:`~workbench.extractors.base.Extractor` with a ``heatmap_layer``, or a
            registered name (created with ``weights``).
        reference: the reference set: features ``N_r x D`` (array or
            :class:`~workbench.cache.EmbeddingCache`) or, for FD only, Gaussian statistics: a
            ``(mu, sigma)`` tuple, a mapping or object with ``mu`` and ``sigma`` (a pytorch-fid
            ``.npz``), or :class:`~workbench.metrics.frechet.GaussianStats`.
        generated: the generated set's features (array or cache). None (default): the features of
            ``images`` themselves. Otherwise, the images are added to it (``n = len(generated) +
            N``), unless ``indices`` says which rows of ``generated`` they are.
        indices: row of ``generated`` of each image; those rows are replaced by the images'
            freshly extracted features, so that ``G`` holds each image once.
        metric: ``"fd"`` or ``"kd"``.
        layer: dotted name of the explained layer; default the extractor's ``heatmap_layer``.
        weights: weights of an extractor given by name.
        batch_size: images per forward/backward pass.
        progress: True (a bar), False/None, or a callable receiving progress events.

    Returns:
        :class:`HeatmapResult`: ``.maps`` (``N x H x W`` float32, non-negative), ``.delta``
        (``(N,)``: metric with the image minus without it), ``.overlay(i)``, ``.to_frame()``.
        Cost: two forward passes and one backward pass per image, plus one FD decomposition
        (``O(n D^2 + D^3)``) or the KD kernel sums (``O((n + N_r)^2 D)``).

    Raises:
        ValueError: bad images, metric, indices or batch size; an extractor without a heatmap
            layer; statistics given as the reference of KD; too few generated samples (FD and
            KD need ``n >= 3``); mismatched feature dimensions.
    """
    if metric not in HEATMAP_METRICS:
        raise ValueError(f"metric must be one of {HEATMAP_METRICS}; got {metric!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if isinstance(images, EmbeddingCache):
        imgs, cache_rows = _cache_images(images, indices)
        if generated is None:
            generated, indices = images, cache_rows
    else:
        imgs = _as_images(images)
    n_img, height, width = imgs.shape[:3]
    ext = _resolve_extractor(extractor, weights)
    layer_name, module = heatmap_module(ext, layer)
    if getattr(ext.preprocessor, "resize_mode", None) == "shortest" and height != width:
        raise ValueError(
            f"extractor {ext.name!r} centre-crops its input (resize_mode='shortest'), so maps of {height} x {width} "
            "images would not cover them; use square images or an extractor with resize_mode='squash'"
        )
    ref_features, ref_stats = _reference(reference, metric)

    with ProgressReporter(progress, f"{metric} heatmaps", 2 * n_img, unit="img") as bar:
        feats = np.empty((n_img, ext.dim), dtype=np.float64)
        for start in range(0, n_img, batch_size):
            batch = _prepare(ext, imgs[start : start + batch_size])
            feats[start : start + len(batch)] = ext(batch).features.double().cpu().numpy()
            bar.advance(len(batch))

        gen, rows = _generated_set(feats, generated, indices)
        ref_dim = ref_stats.dim if ref_stats is not None else ref_features.shape[1]  # type: ignore[union-attr]
        if ref_dim != ext.dim or gen.shape[1] != ext.dim:
            raise ValueError(
                f"dimensions differ: extractor {ext.name!r} gives {ext.dim}-d features, reference has {ref_dim}, "
                f"generated has {gen.shape[1]}"
            )
        if gen.shape[0] < 3:
            raise ValueError(f"{metric} heatmaps need at least 3 generated samples; got {gen.shape[0]}")
        if metric == "fd":
            dec = frechet_decomposition(ref_features, gen, real_stats=ref_stats)
            grads = dec.gradients(feats)
            delta = -dec.removal_exact(feats)
            value = dec.fd
        else:
            assert ref_features is not None
            grads, delta, value = _kd_terms(gen, np.asarray(ref_features, dtype=np.float64), rows)

        maps = np.empty((n_img, height, width), dtype=np.float32)
        grid: tuple[int, int] = (0, 0)
        for start in range(0, n_img, batch_size):
            batch = _prepare(ext, imgs[start : start + batch_size])
            cam = _gradcam(ext, module, layer_name, batch, grads[start : start + len(batch)])
            grid = (int(cam.shape[1]), int(cam.shape[2]))
            up = F.interpolate(cam[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
            maps[start : start + len(batch)] = up.clamp_min(0.0).cpu().numpy()
            bar.advance(len(batch))

    return HeatmapResult(
        maps=maps,
        delta=np.asarray(delta, dtype=np.float64),
        images=imgs,
        metric=metric,
        value=value,
        layer=layer_name,
        extractor=ext.name,
        grid=grid,
        n_generated=int(gen.shape[0]),
    )


def _prepare(ext: Extractor, images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([ext.preprocessor(im) for im in images]).astype(np.float32, copy=False))


def _generated_set(
    feats: np.ndarray, generated: Any, indices: Sequence[int] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The generated set ``G`` (float64) and the row of each image in it."""
    n_img = feats.shape[0]
    if generated is None:
        if indices is not None:
            raise ValueError("indices= names rows of generated=; pass generated as well, or leave indices out")
        return feats, np.arange(n_img)
    if isinstance(generated, EmbeddingCache):
        generated = generated.features
    base = np.array(as_features(generated, "generated"), dtype=np.float64)
    if base.shape[1] != feats.shape[1]:
        raise ValueError(f"generated has {base.shape[1]}-d features but the extractor gives {feats.shape[1]}-d")
    if indices is None:
        return np.concatenate([base, feats]), np.arange(base.shape[0], base.shape[0] + n_img)
    rows = np.asarray(indices)
    if rows.shape != (n_img,) or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"indices must hold one integer row of generated per image ({n_img}); got {indices!r}")
    if rows.min() < 0 or rows.max() >= base.shape[0] or len(np.unique(rows)) != n_img:
        raise ValueError(f"indices must be distinct rows of generated (0 to {base.shape[0] - 1}); got {indices!r}")
    base[rows] = feats
    return base, rows.astype(np.int64)


def _gradcam(
    ext: Extractor, module: torch.nn.Module, layer: str, batch: torch.Tensor, grads: np.ndarray
) -> torch.Tensor:
    """``B x h x w`` float64 ``ReLU(sum_c w_c A_c)``, ``w_c = mean_hw (dM/dA_c)^2``, on the layer's grid."""
    captured: list[torch.Tensor] = []

    def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, (tuple, list)) else output)

    root = ext._modules()[0]
    handle = module.register_forward_hook(hook)
    try:
        for m in ext._modules():
            m.eval()
        with torch.inference_mode(False), torch.enable_grad():
            x = batch.to(ext.device, dtype=torch.float32).requires_grad_(True)
            feats = ext.forward(x).features
            if not captured:
                raise ValueError(f"layer {layer!r} of extractor {ext.name!r} did not run in its forward pass")
            acts = captured[-1]
            if feats.shape != (x.shape[0], ext.dim):
                raise RuntimeError(
                    f"extractor {ext.name!r} returned features of shape {tuple(feats.shape)}, expected "
                    f"({x.shape[0]}, {ext.dim})"
                )
            upstream = torch.from_numpy(grads).to(device=feats.device, dtype=feats.dtype)
            (grad_acts,) = torch.autograd.grad(feats, acts, grad_outputs=upstream, allow_unused=True)
    finally:
        handle.remove()
    if grad_acts is None:
        raise ValueError(f"the features of extractor {ext.name!r} do not depend on layer {layer!r}; choose another")
    a = _to_grid(acts.detach(), root, layer).double()
    g = _to_grid(grad_acts.detach(), root, layer).double()
    weights = (g * g).mean(dim=(2, 3), keepdim=True)
    return (weights * a).sum(dim=1).clamp_min(0.0)


def heatmaps_of_source(
    images: Any,
    reference: EmbeddingCache,
    generated: EmbeddingCache | None = None,
    *,
    extractor: Extractor | str | None = None,
    weights: str | None = None,
    metric: str = "fd",
    limit: int | None = 64,
    layer: str | None = None,
    batch_size: int = 32,
    progress: Any = True,
) -> tuple[HeatmapResult, list[str], str]:
    """Heatmaps of the images of a source against caches (what ``workbench heatmaps`` runs).

    Args:
        images: an image source (folder, ``.zip``, ``.npz``, array); its first ``limit`` images.
        reference, generated: embedding caches; ``generated`` None: the images alone are ``G``.
        extractor: a registered name or an extractor; default the reference cache's extractor.
        weights: its weights; default the reference cache's weights spec (when ``extractor`` is
            the reference's), else ``"default"``.

    Returns:
        ``(result, ids, how)``: the heatmaps, each image's id in its source, and one line saying
        how the images entered ``G`` (as rows of ``generated`` when the source is the one that
        cache was made from, else added to it).

    Raises:
        ValueError: the caches were made by different extractors or weights, or by another
            extractor than the one asked for (naming both); as :func:`metric_heatmaps`.
    """
    made_by = reference.extractor
    if generated is not None:
        other = generated.extractor
        for what in ("name", "variant"):
            if other.get(what) != made_by.get(what):
                raise ValueError(
                    f"the caches were made by different extractors: {reference.path} by {made_by.get('name')} "
                    f"({made_by.get('variant')}), {generated.path} by {other.get('name')} ({other.get('variant')})"
                )
        if other["weights"].get("identity") != made_by["weights"].get("identity"):
            raise ValueError(
                f"the caches were made with different weights: {reference.path} with "
                f"{made_by['weights'].get('identity')}, {generated.path} with {other['weights'].get('identity')}"
            )
    name = extractor if isinstance(extractor, str) else None
    if extractor is None or (name is not None and name == made_by.get("name")):
        name = str(made_by.get("name"))
        if weights is None:
            weights = str(made_by["weights"].get("spec") or "default")
    ext = _resolve_extractor(extractor if isinstance(extractor, Extractor) else name or "", weights or "default")
    made = ext.describe()
    if made["name"] != made_by.get("name") or made["dim"] != made_by.get("dim"):
        raise ValueError(
            f"extractor {made['name']!r} ({made['dim']}-d) is not the one the caches were made with "
            f"({made_by.get('name')!r}, {made_by.get('dim')}-d); name that one (--extractor {made_by.get('name')})"
        )
    if made["weights"].get("identity") != made_by["weights"].get("identity"):
        raise ValueError(
            f"extractor {made['name']!r} has weights {made['weights'].get('identity')}, but the caches were made "
            f"with {made_by['weights'].get('identity')}; pass those weights (--weights {made_by['weights'].get('spec')})"
        )
    imgs, ids = load_images(images, limit=limit)
    indices = None
    how = "added to the generated set" if generated is not None else "the images alone are the generated set"
    if generated is not None:
        src = str((generated.manifest.get("source") or {}).get("path") or "")
        same = isinstance(images, (str, os.PathLike)) and src and Path(src).resolve() == Path(images).resolve()
        if same:
            position = {str(v): i for i, v in enumerate(generated.meta["id"].astype(str))}
            found = [position.get(i) for i in ids]
            if all(f is not None for f in found):
                indices = np.asarray(found, dtype=np.int64)
                how = f"rows of the generated cache ({len(generated)} samples), which was made from this source"
    result = metric_heatmaps(
        imgs,
        ext,
        reference,
        generated=generated,
        indices=indices,
        metric=metric,
        layer=layer,
        batch_size=batch_size,
        progress=progress,
    )
    return result, ids, how
