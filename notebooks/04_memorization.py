# %% [markdown]
# # 4 · Find the memorizer
#
# One set of the zoo, the `memorizer`, is made of its model's training images with a little
# noise: a model that learned to copy. This notebook shows why FD alone rewards it, and how
# nearest-neighbour distances to the training set, AuthPct (Alaa et al. 2022) and the
# data-copying test C_T (Meehan et al. 2020) find it.

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

import numpy as np
import pandas as pd

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
# ## FD rewards copying
#
# FD compares the generated set's mean and covariance with the real images'. Copies of
# training images have the statistics of real images, so the memorizer's FD is as good as
# that of the `ideal` set of genuinely new real images: the two take the first two places
# under every extractor, and which comes first is sampling noise.

# %%
from workbench.metrics.frechet import fd

fd_table = pd.DataFrame(
    {
        e: {m: fd(ws.cache(ws.reference, e).features, ws.cache(m, e).features) for m in ws.generated}
        for e in ws.extractors
    }
)
fd_rank = fd_table.rank().astype(int)
fd_table.assign(**{f"rank ({e})": fd_rank[e] for e in ws.extractors}).sort_values("demo-ssl")

# %% [markdown]
# ## Nearest training samples
#
# For every generated image we search its nearest training images (exact search) in the
# features of the classifier and of the unsupervised encoder. A copy sits much closer to a
# training image than a new image does. How much closer counts as a copy is calibrated on
# real images the model never saw (a sample of the reference set): the threshold is the
# distance below which only 1% of those unseen real images fall, so about 1% of genuinely new
# images are flagged by chance (the false-positive estimate).
#
# **AuthPct** is the share of generated images farther from their nearest training image than
# that training image is from its own nearest neighbour (higher = more authentic; unseen real
# images do not score 100% either, see the first line of the output). **C_T** compares, cell
# by cell, how close generated and unseen real images lie to the training set: strongly
# negative means copying, positive means the samples stay farther from the training data than
# new real images do (underfitting).
#
# To stay fast on the full demo (50,000 training images) we search for 1,000 images of each
# model at once and calibrate on 2,000 reference images.

# %%
from workbench.analysis.memorization import memorization_report
from workbench.metrics.ct_score import ct_score

EXTRACTORS = ["demo-classifier", "demo-ssl"]
N_FAKE, N_TEST = 1000, 2000
rng = np.random.default_rng(0)
rows = {m: np.sort(rng.choice(ws.size(m), min(N_FAKE, ws.size(m)), replace=False)) for m in ws.generated}
test_rows = np.sort(rng.choice(ws.size(ws.reference), min(N_TEST, ws.size(ws.reference)), replace=False))

tables, searches = {}, {}
for ext in EXTRACTORS:
    train = ws.cache(ws.train, ext)
    test = np.asarray(ws.cache(ws.reference, ext).features[test_rows])
    fakes = {m: np.asarray(ws.cache(m, ext).features[rows[m]]) for m in ws.generated}
    search = memorization_report(train, np.concatenate(list(fakes.values())), test, k=5, progress=False)
    records, start = {}, 0
    for m, x in fakes.items():
        part = slice(start, start + len(x))
        start += len(x)
        records[m] = {
            "copy rate": float(search.likely_copy[part].mean()),
            "AuthPct": float(100 * search.authentic[part].mean()),
            "C_T": float(ct_score(train.features, test, x, seed=0).c_t),
            "FD rank": int(fd_rank.at[m, ext]),
        }
    tables[ext], searches[ext] = pd.DataFrame(records).T, search
    print(
        f"{ext}: copy threshold {search.threshold:.3g}; unseen real images: AuthPct {search.test_auth_pct:.1f}%, "
        f"flagged {search.test_flag_rate:.1%}"
    )
memo = pd.concat(tables, axis=1)
memo.sort_values(("demo-classifier", "copy rate"), ascending=False)

# %% [markdown]
# **Reading it.** The memorizer is flagged on every count: the highest share of images closer
# to a training image than 99% of unseen real images are, an AuthPct far below that of real
# images, a strongly negative C_T, and yet one of the two best FDs. The other sets are flagged at
# about the false-positive rate. Both extractors flag most of the memorizer's images; how
# many depends on the features, and a weakly trained encoder flags fewer, since it maps the
# jittered copies farther from their originals.
# The blurry and VAE sets lie *farther* from the training set than unseen real images
# (positive C_T, high AuthPct): authenticity is not quality.
#
# ## Browse the pairs
#
# `MemorizationBrowser` shows each generated image next to its 5 nearest training images,
# most suspicious first; flagged rows are outlined in red. Move the threshold slider and the
# copy count follows (the flags are recomputed from the stored distances, no new search).
# Clicking a row selects the image and its neighbours in the shared selection.

# %%
from workbench.widgets import MemorizationBrowser, Selection

browser = MemorizationBrowser(
    ws, selection=Selection(model="memorizer", extractor="demo-classifier"), test_set="reference"
)
browser

# %%
browser.wait()  # the search runs in the background; the view fills in when it is done
calibrated = browser.threshold.value
counts = {}
for factor in (0.5, 1.0, 2.0):
    browser.threshold.value = calibrated * factor
    counts[factor] = browser.copy_count
    print(f"threshold {browser.threshold.value:8.4g}: {browser.copy_count:5d} of {len(browser.report.ratio)} flagged")
browser.threshold.value = calibrated
browser.report.most_suspicious(5)

# %% tags=["summary"]
summary = {
    "memorization": {ext: table.round(6).to_dict(orient="index") for ext, table in tables.items()},
    "test_flag_rate": {ext: float(s.test_flag_rate) for ext, s in searches.items()},
    "test_auth_pct": {ext: float(s.test_auth_pct) for ext, s in searches.items()},
    "fd_rank": fd_rank.to_dict(),
    "browser_counts": {str(k): int(v) for k, v in counts.items()},
}
print(json.dumps(summary))
