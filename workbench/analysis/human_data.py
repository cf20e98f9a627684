"""Loaders for human realism judgments and published per-model metrics, as tidy pandas frames.

Shipped data (``workbench/data/``, installed with the package and read with ``importlib.resources``
through :func:`workbench.paths.data_dir`; ``$WORKBENCH_DATA_DIR`` overrides it), from the
dgm-eval repository by Layer 6 AI (MIT license), for Stein et al., "Exposing flaws of generative
model evaluation metrics and their unfair treatment of diffusion models", NeurIPS 2023:

- :func:`load_human_study` -- the human study: 41 models on four datasets ("cifar10",
  "imagenet256", "lsun256", "ffhq256"); one row per participant (``level="participants"``) or
  one row per image (``level="images"``).
- :func:`load_published_metrics` -- the paper's DINOv2 leaderboard joined with the order of the
  same models by Inception-FD.

Your own study: :func:`load_user_study` reads a CSV in this format (header row required,
comma-separated, UTF-8; column order free; extra columns are kept as they are):

========== ======== ========================================================================
column     required meaning
========== ======== ========================================================================
model      yes      the model whose images were judged; must match the ``model`` column of
                    the metric table you compare against.
score      yes      a finite number: the human realism score of the row, oriented so that
                    **higher = judged more realistic**. For a real-vs-generated test use the
                    error rate (share of wrong answers, as ``err_rt`` in the shipped study);
                    for a per-image row, the share of judges who took the generated image
                    for real (that is ``1 - soft_label`` of the shipped per-image data).
participant no      who gave the judgment. Rows of one participant (same dataset and model)
                    are averaged into one participant score before any bootstrap. Without
                    this column every row counts as one independent participant.
dataset    no       the dataset (known aliases such as "imagenet" or "ffhq" are mapped to the
                    shipped names "imagenet256", "ffhq256"). Needed when your metric table
                    holds several datasets.
image      no       the image judged, for per-image rows (soft labels). Kept as text.
========== ======== ========================================================================

Example file::

    model,participant,score
    my-gan,p01,0.18
    my-gan,p02,0.22
    my-diffusion,p03,0.31

Dataset names differ between the shipped files: the participant files and the leaderboard's
``dataset`` column say "imagenet256", "lsun256", "ffhq256", while the per-image files are named
``imagenet_labeled_data.csv``, ``lsun_...``, ``ffhq_...``. Every loader returns the canonical
names of :data:`DATASETS`; :func:`canonical_dataset` maps the aliases.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from workbench.paths import data_dir

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

#: Canonical names of the four datasets of the shipped human study.
DATASETS: tuple[str, ...] = ("cifar10", "imagenet256", "lsun256", "ffhq256")

# Per-image files use short names: workbench/data/human-eval-realism/per-image/<name>_labeled_data.csv
_PER_IMAGE_STEM = {"cifar10": "cifar10", "imagenet256": "imagenet", "lsun256": "lsun", "ffhq256": "ffhq"}

_ALIASES = {
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "cifar": "cifar10",
    "imagenet256": "imagenet256",
    "imagenet": "imagenet256",
    "imagenet-256": "imagenet256",
    "lsun256": "lsun256",
    "lsun": "lsun256",
    "lsun-bedroom": "lsun256",
    "lsun_bedroom": "lsun256",
    "lsun-bedroom256": "lsun256",
    "ffhq256": "ffhq256",
    "ffhq": "ffhq256",
    "ffhq-256": "ffhq256",
}

PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "dataset",
    "model",
    "participant",
    "num_correct",
    "err_rt",
    "f_err_rt",
    "r_err_rt",
    "r_ans_rt",
    "resp_time",
    "f_resp_time",
    "r_resp_time",
)
IMAGE_COLUMNS: tuple[str, ...] = (
    "dataset",
    "model",
    "generated",
    "image_path",
    "number_guesses",
    "number_guesses_generated",
    "soft_label",
)
#: Metric columns of :func:`load_published_metrics` (all on DINOv2-ViT-L/14 features, plus the rank).
PUBLISHED_METRICS: tuple[str, ...] = (
    "fd_dinov2",
    "fd_inf_dinov2",
    "kd_dinov2",
    "fls_dinov2",
    "precision_dinov2",
    "recall_dinov2",
    "density_dinov2",
    "coverage_dinov2",
    "authpct_dinov2",
    "ct_dinov2",
    "ct_mod_dinov2",
    "fls_pog_dinov2",
    "inception_fd_rank",
)
USER_REQUIRED: tuple[str, ...] = ("model", "score")
USER_OPTIONAL: tuple[str, ...] = ("participant", "dataset", "image")
_REFERENCE_SETS = ("test-set", "validation-set")


def canonical_dataset(name: str, *, strict: bool = True) -> str:
    """The canonical dataset name for ``name`` ("imagenet" -> "imagenet256", "FFHQ" -> "ffhq256").

    Matching ignores case and surrounding spaces. With ``strict=False`` an unknown name is returned
    as given (stripped) instead of raising, for user studies on other datasets.

    Raises:
        ValueError: unknown name and ``strict=True``.
    """
    key = str(name).strip()
    canon = _ALIASES.get(key.lower())
    if canon is not None:
        return canon
    if strict:
        raise ValueError(f"dataset {name!r} is not one of the shipped datasets {list(DATASETS)}")
    return key


def _datasets_arg(dataset: str | Iterable[str] | None) -> list[str]:
    if dataset is None:
        return list(DATASETS)
    names = [dataset] if isinstance(dataset, str) else list(dataset)
    if not names:
        raise ValueError("dataset must be None, a dataset name or a non-empty list of names")
    return list(dict.fromkeys(canonical_dataset(n) for n in names))


def _read_csv(resource: Traversable, **kwargs) -> pd.DataFrame:
    """Read one shipped CSV through its resource object (works for any install, not only a checkout)."""
    if not resource.is_file():
        raise FileNotFoundError(f"shipped data file not found: {resource}")
    with resource.open("rb") as fh:
        return pd.read_csv(fh, **kwargs)


def load_human_study(dataset: str | Iterable[str] | None = None, *, level: str = "participants") -> pd.DataFrame:
    """The dgm-eval human realism study (Stein et al., NeurIPS 2023) as a tidy frame.

    Each participant saw 100 real test images and 100 images of one model, one at a time, and
    answered "real" or "generated".

    Args:
        dataset: one of :data:`DATASETS` (aliases accepted), a list of them, or None for all four.
        level: ``"participants"`` -- one row per participant, columns :data:`PARTICIPANT_COLUMNS`:
            ``dataset, model, participant`` (id, unique within a dataset only), ``num_correct``
            (of 200), ``err_rt`` = 1 - num_correct/200 (the human error rate; higher = the model
            fooled people more), ``f_err_rt`` / ``r_err_rt`` (error on generated / real images),
            ``r_ans_rt`` (share of "real" answers), ``resp_time, f_resp_time, r_resp_time``
            (seconds). 1,036 rows for all four datasets.
            ``"images"`` -- one row per image that could be shown, columns :data:`IMAGE_COLUMNS`:
            ``generated`` (bool: True = image of ``model``, False = real test image),
            ``image_path``, ``number_guesses`` (times shown), ``number_guesses_generated`` (times
            called generated), ``soft_label`` = number_guesses_generated / number_guesses (0 when
            never shown). 116,713 rows for all four datasets. LSUN's ``ct2`` model has
            participants but no per-image rows in the released files.

    Returns:
        DataFrame in file order, datasets in the order asked for.

    Raises:
        ValueError: unknown dataset or level.
        FileNotFoundError: the data directory or a file is missing.
    """
    names = _datasets_arg(dataset)
    root = data_dir() / "human-eval-realism"
    frames = []
    if level == "participants":
        for name in names:
            raw = _read_csv(root / "participants" / f"{name}.csv")
            raw = raw.rename(columns={"id": "participant"})
            raw.insert(0, "dataset", name)
            raw["num_correct"] = raw["num_correct"].round().astype(np.int64)
            frames.append(raw[list(PARTICIPANT_COLUMNS)])
    elif level == "images":
        for name in names:
            raw = _read_csv(root / "per-image" / f"{_PER_IMAGE_STEM[name]}_labeled_data.csv", index_col=0)
            raw.insert(0, "dataset", name)
            raw["generated"] = raw["generated"].astype(bool)
            frames.append(raw[list(IMAGE_COLUMNS)])
    else:
        raise ValueError(f"level must be 'participants' or 'images'; got {level!r}")
    return pd.concat(frames, ignore_index=True)


def load_published_metrics(
    dataset: str | Iterable[str] | None = None,
    *,
    include_human: bool = False,
    include_reference_sets: bool = False,
) -> pd.DataFrame:
    """Per-model metrics published by Stein et al. (NeurIPS 2023), one row per model.

    Joins ``published/dgm_eval_dinov2_leaderboard.csv`` of the shipped data (metrics on DINOv2-ViT-L/14
    features) with ``dgm_eval_inception_fd_order.csv`` (the models' order by Inception-FD).

    Columns: ``dataset, model, label`` (display name), then :data:`PUBLISHED_METRICS`: the
    leaderboard's ``fd, fd_inf, kd, fls, precision, recall, density, coverage, authpct, ct,
    ct_mod, fls_pog`` renamed with a ``_dinov2`` suffix (so that they stay distinct from metrics
    you compute on other features), and ``inception_fd_rank``: 1 = highest Inception-FD = worst
    model of its dataset, so a *higher* rank is a *better* (lower) Inception-FD. The Inception-FD
    values themselves are not published in a table; the rank was read off the paper's figure.
    Missing values (e.g. FLS on LSUN/FFHQ) are NaN.

    Args:
        dataset: one of :data:`DATASETS` (aliases accepted), a list of them, or None for all.
        include_human: also return the published ``human_error_rate`` and ``human_error_sem``
            (two decimals; :func:`load_human_study` has the participant data they come from).
        include_reference_sets: also return the ``test-set`` (CIFAR10) / ``validation-set``
            (ImageNet) rows: real held-out images scored against the training data; no human
            data, no rank.

    Returns:
        DataFrame with 41 model rows for all four datasets (43 with the reference sets, which
        exist for CIFAR10 and ImageNet only).
    """
    names = _datasets_arg(dataset)
    root = data_dir() / "published"
    board = _read_csv(root / "dgm_eval_dinov2_leaderboard.csv")
    order = _read_csv(root / "dgm_eval_inception_fd_order.csv")
    unknown = order.merge(board[["dataset", "model"]], how="left", indicator=True)
    unknown = unknown[unknown["_merge"] == "left_only"]
    if len(unknown):  # the two files must name the same models
        raise ValueError(
            f"{root / 'dgm_eval_inception_fd_order.csv'} names models missing from the leaderboard: "
            f"{unknown[['dataset', 'model']].values.tolist()}"
        )
    board = board.merge(order, on=["dataset", "model"], how="left", validate="one_to_one")
    board["dataset"] = board["dataset"].map(canonical_dataset)
    board = board.rename(
        columns={
            c: f"{c}_dinov2"
            for c in (
                "fd",
                "fd_inf",
                "kd",
                "fls",
                "precision",
                "recall",
                "density",
                "coverage",
                "authpct",
                "ct",
                "ct_mod",
                "fls_pog",
            )
        }
    )
    if not include_reference_sets:
        board = board[~board["model"].isin(_REFERENCE_SETS)]
    board = board[board["dataset"].isin(names)]
    board = board.assign(_order=board["dataset"].map(names.index)).sort_values("_order", kind="stable")
    columns = ["dataset", "model", "label"]
    if include_human:
        columns += ["human_error_rate", "human_error_sem"]
    return board[columns + list(PUBLISHED_METRICS)].reset_index(drop=True)


def load_user_study(path: str | Path) -> pd.DataFrame:
    """Read your own human study from a CSV in the format of this module's docstring.

    Args:
        path: the CSV file. Required columns ``model, score``; optional ``participant, dataset,
            image``; other columns are kept.

    Returns:
        DataFrame with the file's columns in file order; ``score`` as float64, ``model``,
        ``participant``, ``image`` as stripped text, ``dataset`` mapped to canonical names where
        it is a known alias (other names kept). Pass it to
        :func:`workbench.analysis.agreement.human_agreement` as ``human_table``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty file, missing required column, empty ``model``/``participant``/
            ``dataset`` cell, or a ``score`` that is not a finite number; the message names the
            file, the line (header = line 1) and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"user study file not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{path}: the file is empty; expected a header row with columns {list(USER_REQUIRED)}"
        ) from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in USER_REQUIRED if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{path}: missing required column(s) {missing}; found columns {list(raw.columns)}. "
            f"The header must name at least {list(USER_REQUIRED)} (optional: {list(USER_OPTIONAL)})."
        )
    if raw.empty:
        raise ValueError(f"{path}: the file has a header but no data rows")
    out = raw.copy()
    for column in ("model", "participant", "dataset", "image"):
        if column in out.columns:
            out[column] = out[column].str.strip()
    for column in ("model", "participant", "dataset"):
        if column in out.columns:
            empty = np.flatnonzero(out[column].to_numpy() == "")
            if len(empty):
                raise ValueError(f"{path}: line {empty[0] + 2}, column {column!r}: empty value")
    score = pd.to_numeric(out["score"].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(score))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{path}: line {i + 2}, column 'score': expected a finite number, got {raw['score'].iloc[i]!r}"
            + (f" ({len(bad)} such rows)" if len(bad) > 1 else "")
        )
    out["score"] = score
    if "dataset" in out.columns:
        out["dataset"] = out["dataset"].map(lambda d: canonical_dataset(d, strict=False))
    return out
