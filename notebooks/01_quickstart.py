# %% [markdown]
# # 1 · Quickstart: from image folders to a metric table with confidence intervals
#
# A generative model's samples usually arrive as a folder of images. This notebook writes a
# few hundred PNGs to a temporary folder, turns them into an **embedding cache** (features,
# thumbnails and metadata on disk, reused on the next run), computes metrics with **bootstrap
# confidence intervals**, and then opens the interactive views of the whole demo workspace:
# a zoo of "generated" sets, each with one known flaw (`ideal`, `memorizer`, `mode-dropper`,
# `blurry`, a weak `vae`, and `hist-matched`, the VAE resampled to game a classifier).

# %% [markdown]
# **Stand-in extractors.** This machine has no pretrained weights, so the demo trains its own small
# networks on Fashion-MNIST: `demo-classifier` (a CNN trained on the class labels; 128-d features
# and 10 logits) stands in for the **Inception-v3** of FID, `demo-ssl` (an autoencoder trained
# without labels; 64-d) stands in for **DINOv2**, and `pixels` (down-sampled pixels, 768-d) takes
# the third column where **CLIP** would be. Their numbers are not comparable with published ones
# (every metric table says so). On a machine with the weight files, the same code runs on the real
# extractors:
#
# ```python
# import workbench as wb
# wb.extract("samples/", "inception", weights="/path/to/pt_inception-2015-12-05-6726825d.pth")
# wb.extract("samples/", "dinov2", weights="/path/to/dinov2_vitl14_pretrain.pth")
# wb.extract("samples/", "clip", weights="/path/to/open_clip_pytorch_model.bin")  # ViT-L-14 state dict
# ```
# %%
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import workbench as wb
from workbench.demo import find_demo_workspace
from workbench.metrics.validation import SampleSizeWarning
from workbench.workspace import Workspace

warnings.simplefilter("ignore", SampleSizeWarning)  # metric reports collect these warnings themselves
pd.set_option("display.precision", 4)
pd.set_option("display.width", 160)


DEMO = find_demo_workspace()
ws = Workspace.open(DEMO)
print(ws.describe())

# %% [markdown]
# ## 1. Images on disk
#
# We take the first 300 images of two sets of the zoo, `ideal` (held-out real images: what a
# perfect generator would produce) and `blurry` (the same kind of images, blurred and noisy),
# and write them as PNG files, as a sampling script would.

# %%
import tempfile

from PIL import Image

from workbench.demo import load_workspace

index = load_workspace(DEMO)
work = Path(tempfile.mkdtemp(prefix="wb-quickstart-"))
N_PNG = 300
folders = {}
for name in ("ideal", "blurry"):
    with np.load(DEMO / index["sets"][name]["file"], allow_pickle=False) as npz:
        images = npz["arr_0"][:N_PNG, :, :, 0]  # N x 28 x 28 grey levels
    folders[name] = work / name
    folders[name].mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folders[name] / f"{i:04d}.png")
print({name: len(list(folder.glob("*.png"))) for name, folder in folders.items()}, "PNGs in", work)

# %% [markdown]
# ## 2. Embeddings, cached
#
# `wb.extract(source, extractor)` reads the folder (any image format, any size; class
# subfolders become labels), runs the extractor and writes one cache directory per
# (source, extractor): `features.npy`, `thumbnails.npy`, `meta.parquet` and a `manifest.json`
# that records the weights' SHA-256, the preprocessing and the files' fingerprints. Running it
# again reuses the cache; changing an image or the weights makes a new one. Here the weights
# are the demo's own `demo-ssl` file.

# %%
ssl_weights = DEMO / "models" / "demo-ssl.safetensors"
caches = {
    name: wb.extract(
        folder, "demo-ssl", weights=str(ssl_weights), out=work / "caches", thumbnails=28, num_workers=0, progress=False
    )
    for name, folder in folders.items()
}
for name, cache in caches.items():
    print(f"{name:7s} {cache.features.shape}  {cache.path.name}")

# The PNG round trip is lossless: the folder's features are the workspace cache's rows.
png_vs_workspace = float(np.abs(caches["ideal"].features - ws.cache("ideal", "demo-ssl").features[:N_PNG]).max())
print("largest difference to the workspace's cache of the same images:", png_vs_workspace)

# %% [markdown]
# ## 3. Metrics with confidence intervals
#
# `evaluate_caches` compares each generated cache with the reference cache (the real test
# images). It refuses to mix caches made by different extractors or weights. With
# `bootstrap=B` both sets are resampled `B` times and every pairwise metric gets a 95%
# interval `value ± 1.96 · std` (centred on the full-data value: resampling duplicates rows,
# which biases FD up and k-NN radii down, so the spread is usable but not the percentiles).
# 300 samples is far fewer than FID's 50,000 convention: FD is biased upwards, the report's
# warnings say so, and its intervals are wide. Compare them with those of recall and coverage,
# which separate the blurred images from the real ones at this size.

# %%
from workbench.metrics.from_caches import evaluate_caches

BOOTSTRAP = 30
quick = evaluate_caches(ws.cache("reference", "demo-ssl"), caches, metrics="fd,prdc", bootstrap=BOOTSTRAP, seed=0)
quick.to_frame()

# %%
for metric in ("fd", "recall", "coverage"):
    (v0, lo0, hi0), (v1, lo1, hi1) = [[f.at[n, metric] for f in (quick.values, quick.low, quick.high)] for n in caches]
    apart = "apart" if hi0 < lo1 or hi1 < lo0 else "overlapping"
    print(f"{metric:8s} ideal {v0:8.3f} [{lo0:.3f}, {hi0:.3f}]   blurry {v1:8.3f} [{lo1:.3f}, {hi1:.3f}]   ({apart})")
print(*quick.warnings[:2], sep="\n")

# %% [markdown]
# ## 4. Every set under every extractor
#
# The same on the whole workspace: one report per extractor (saved in the workspace's
# `.workbench` folder, so the next run shows it at once). `MetricTable` shows one row per
# (model, extractor): click a header to sort, a row to select that model in the other views;
# green is the best value per extractor and column, red the worst.
#
# What to look for: `ideal` and the `memorizer` share the best FDs (which of the two comes
# first is sampling noise: the memorizer's images *are* real training images) although the
# memorizer generated nothing new (notebook 4); the
# `mode-dropper` keeps the precision of real images but loses recall and coverage: the
# signature of missing modes (its real images cover 7 of the 10 classes); `blurry` and the two
# VAE-based sets fall behind on most columns.

# %%
from workbench.workspace import workspace_report

METRICS = {"pixels": "fd", "demo-classifier": "fd,prdc", "demo-ssl": "fd,prdc"}
reports = {ext: workspace_report(ws, ext, metrics=names) for ext, names in METRICS.items()}

from workbench.widgets import MetricTable

table = MetricTable(reports)
table

# %%
signature = pd.DataFrame(
    {
        ext: reports[ext].values.loc["mode-dropper", ["precision", "recall", "coverage"]]
        - reports[ext].values.loc["ideal", ["precision", "recall", "coverage"]]
        for ext in ("demo-classifier", "demo-ssl")
    }
)
print("mode-dropper minus ideal (negative = worse):")
signature

# %% [markdown]
# ## 5. The dashboard
#
# `Workbench` links every view through one shared selection: pick a model in the header or a
# row of the metric table, lasso points in the embedding map, click a class bar or a
# memorization row, and the sample grid below the tabs pages through those samples.
# Computations that take a while (UMAP, nearest training samples, per-sample scores) run in
# the background with a status line. (The Memorization tab flags copies by the authenticity
# ratio here, because the demo workspace has no separate held-out test set; notebook 4
# calibrates the threshold on the reference images instead, which is much more reliable.)

# %%
from workbench.widgets import Workbench

bench = Workbench(ws, reports=reports, memorization=False, max_points=1500, human_n_boot=300)
bench

# %% [markdown]
# ## 6. A static report
#
# `bench.report(path)` writes the same views as one self-contained HTML file (plotly.js,
# figures and thumbnails inlined): it opens offline, for a colleague without Jupyter.

# %%
report_path = bench.report(DEMO / "reports" / "quickstart.html")
print(report_path, f"{report_path.stat().st_size / 1e6:.1f} MB")


# %% tags=["summary"]
def column(name: str) -> dict:
    return {ext: rep.values[name].round(6).to_dict() for ext, rep in reports.items() if name in rep.values}


summary = {
    "png_vs_workspace": png_vs_workspace,
    "png_fd": {n: [float(f.at[n, "fd"]) for f in (quick.values, quick.low, quick.high)] for n in caches},
    "fd": column("fd"),
    "precision": column("precision"),
    "recall": column("recall"),
    "coverage": column("coverage"),
    "report": str(report_path),
}
print(json.dumps(summary))
