"""Write the four demo notebooks (``01_quickstart.ipynb`` ... ``04_memorization.ipynb``) with nbformat.

The notebooks are generated from this file so that they can be reviewed as plain Python and are
committed without outputs. Re-run after editing::

    .venv/bin/python notebooks/make_notebooks.py

Every notebook runs top to bottom on the demo workspace (``$WORKBENCH_DEMO_DIR``, else
``workspace/demo`` in the working directory or a parent; ``workbench demo`` builds it) and ends
with a cell tagged ``summary`` that prints one JSON line of the numbers the tests check
(``tests/test_notebooks.py``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

STAND_INS = """\
**Stand-in extractors.** This machine has no pretrained weights, so the demo trains its own small
networks on Fashion-MNIST: `demo-classifier` (a CNN trained on the class labels; 128-d features
and 10 logits) stands in for the **Inception-v3** of FID, `demo-ssl` (an autoencoder trained
without labels; 64-d) stands in for **DINOv2**, and `pixels` (down-sampled pixels, 768-d) takes
the third column where **CLIP** would be. Their numbers are not comparable with published ones
(every metric table says so). On a machine with the weight files, the same code runs on the real
extractors:

```python
import workbench as wb
wb.extract("samples/", "inception", weights="/path/to/pt_inception-2015-12-05-6726825d.pth")
wb.extract("samples/", "dinov2", weights="/path/to/dinov2_vitl14_pretrain.pth")
wb.extract("samples/", "clip", weights="/path/to/open_clip_pytorch_model.bin")  # ViT-L-14 state dict
```
"""

SETUP = '''\
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import workbench as wb
import workbench.demo  # registers the demo-classifier and demo-ssl extractors
from workbench.metrics.validation import SampleSizeWarning
from workbench.widgets import Workspace

warnings.simplefilter("ignore", SampleSizeWarning)  # metric reports collect these warnings themselves
pd.set_option("display.precision", 4)
pd.set_option("display.width", 160)


def find_demo() -> Path:
    """The demo workspace: $WORKBENCH_DEMO_DIR, else workspace/demo here or in a parent folder."""
    if os.environ.get("WORKBENCH_DEMO_DIR"):
        return Path(os.environ["WORKBENCH_DEMO_DIR"]).expanduser().resolve()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "workspace" / "demo" / "workspace.json").is_file():
            return folder / "workspace" / "demo"
    raise FileNotFoundError("no demo workspace found: build it with `workbench demo` (about 5 minutes) "
                            "or `bash scripts/lab.sh`, or set WORKBENCH_DEMO_DIR")


DEMO = find_demo()
ws = Workspace.open(DEMO)
print(ws.describe())
'''

# The metric table of notebooks 1 and 3 (same settings, so the second one reads the saved reports).
# k-NN metrics on 768-d pixel vectors cost about a minute on two cores; add "prdc" there when you can wait.
REPORTS = '''\
from workbench.widgets.workspace_metrics import workspace_report

METRICS = {"pixels": "fd", "demo-classifier": "fd,prdc", "demo-ssl": "fd,prdc"}
reports = {ext: workspace_report(ws, ext, metrics=names) for ext, names in METRICS.items()}
'''


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = new_code_cell(textwrap.dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def with_ids(nb: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """Stable cell ids (nbformat draws random ones), so regenerating does not touch unchanged cells."""
    for i, cell in enumerate(nb.cells):
        cell.id = f"{stem.split('_')[0]}-{i:02d}"
    return nb


# ---------------------------------------------------------------------------------------------------- 01


def quickstart() -> nbformat.NotebookNode:
    return notebook([
        md("""
        # 1 · Quickstart: from image folders to a metric table with confidence intervals

        A generative model's samples usually arrive as a folder of images. This notebook writes a
        few hundred PNGs to a temporary folder, turns them into an **embedding cache** (features,
        thumbnails and metadata on disk, reused on the next run), computes metrics with **bootstrap
        confidence intervals**, and then opens the interactive views of the whole demo workspace:
        a zoo of "generated" sets, each with one known flaw (`ideal`, `memorizer`, `mode-dropper`,
        `blurry`, a weak `vae`, and `hist-matched`, the VAE resampled to game a classifier).
        """),
        md(STAND_INS),
        code(SETUP),
        md("""
        ## 1. Images on disk

        We take the first 300 images of two sets of the zoo, `ideal` (held-out real images: what a
        perfect generator would produce) and `blurry` (the same kind of images, blurred and noisy),
        and write them as PNG files, as a sampling script would.
        """),
        code('''
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
        '''),
        md("""
        ## 2. Embeddings, cached

        `wb.extract(source, extractor)` reads the folder (any image format, any size; class
        subfolders become labels), runs the extractor and writes one cache directory per
        (source, extractor): `features.npy`, `thumbnails.npy`, `meta.parquet` and a `manifest.json`
        that records the weights' SHA-256, the preprocessing and the files' fingerprints. Running it
        again reuses the cache; changing an image or the weights makes a new one. Here the weights
        are the demo's own `demo-ssl` file.
        """),
        code('''
        ssl_weights = DEMO / "models" / "demo-ssl.safetensors"
        caches = {
            name: wb.extract(folder, "demo-ssl", weights=str(ssl_weights), out=work / "caches", thumbnails=28,
                             num_workers=0, progress=False)
            for name, folder in folders.items()
        }
        for name, cache in caches.items():
            print(f"{name:7s} {cache.features.shape}  {cache.path.name}")

        # The PNG round trip is lossless: the folder's features are the workspace cache's rows.
        png_vs_workspace = float(np.abs(caches["ideal"].features - ws.cache("ideal", "demo-ssl").features[:N_PNG]).max())
        print("largest difference to the workspace's cache of the same images:", png_vs_workspace)
        '''),
        md("""
        ## 3. Metrics with confidence intervals

        `evaluate_caches` compares each generated cache with the reference cache (the real test
        images). It refuses to mix caches made by different extractors or weights. With
        `bootstrap=B` both sets are resampled `B` times and every pairwise metric gets a 95%
        interval `value ± 1.96 · std` (centred on the full-data value: resampling duplicates rows,
        which biases FD up and k-NN radii down, so the spread is usable but not the percentiles).
        300 samples is far fewer than FID's 50,000 convention: FD is biased upwards, the report's
        warnings say so, and its intervals are wide. Compare them with those of recall and coverage,
        which separate the blurred images from the real ones at this size.
        """),
        code('''
        from workbench.metrics.from_caches import evaluate_caches

        BOOTSTRAP = 30
        quick = evaluate_caches(ws.cache("reference", "demo-ssl"), caches, metrics="fd,prdc", bootstrap=BOOTSTRAP, seed=0)
        quick.to_frame()
        '''),
        code('''
        for metric in ("fd", "recall", "coverage"):
            (v0, lo0, hi0), (v1, lo1, hi1) = [[f.at[n, metric] for f in (quick.values, quick.low, quick.high)] for n in caches]
            apart = "apart" if hi0 < lo1 or hi1 < lo0 else "overlapping"
            print(f"{metric:8s} ideal {v0:8.3f} [{lo0:.3f}, {hi0:.3f}]   blurry {v1:8.3f} [{lo1:.3f}, {hi1:.3f}]   ({apart})")
        print(*quick.warnings[:2], sep="\\n")
        '''),
        md("""
        ## 4. Every set under every extractor

        The same on the whole workspace: one report per extractor (saved in the workspace's
        `.workbench` folder, so the next run shows it at once). `MetricTable` shows one row per
        (model, extractor): click a header to sort, a row to select that model in the other views;
        green is the best value per extractor and column, red the worst.

        What to look for: `ideal` and the `memorizer` share the best FDs (which of the two comes
        first is sampling noise: the memorizer's images *are* real training images) although the
        memorizer generated nothing new (notebook 4); the
        `mode-dropper` keeps the precision of real images but loses recall and coverage: the
        signature of missing modes (its real images cover 7 of the 10 classes); `blurry` and the two
        VAE-based sets fall behind on most columns.
        """),
        code(REPORTS + "\nfrom workbench.widgets import MetricTable\n\ntable = MetricTable(reports)\ntable"),
        code('''
        signature = pd.DataFrame({ext: reports[ext].values.loc["mode-dropper", ["precision", "recall", "coverage"]]
                                  - reports[ext].values.loc["ideal", ["precision", "recall", "coverage"]]
                                  for ext in ("demo-classifier", "demo-ssl")})
        print("mode-dropper minus ideal (negative = worse):")
        signature
        '''),
        md("""
        ## 5. The dashboard

        `Workbench` links every view through one shared selection: pick a model in the header or a
        row of the metric table, lasso points in the embedding map, click a class bar or a
        memorization row, and the sample grid below the tabs pages through those samples.
        Computations that take a while (UMAP, nearest training samples, per-sample scores) run in
        the background with a status line. (The Memorization tab flags copies by the authenticity
        ratio here, because the demo workspace has no separate held-out test set; notebook 4
        calibrates the threshold on the reference images instead, which is much more reliable.)
        """),
        code('''
        from workbench.widgets import Workbench

        bench = Workbench(ws, reports=reports, memorization=False, max_points=1500, human_n_boot=300)
        bench
        '''),
        md("""
        ## 6. A static report

        `bench.report(path)` writes the same views as one self-contained HTML file (plotly.js,
        figures and thumbnails inlined): it opens offline, for a colleague without Jupyter.
        """),
        code('''
        report_path = bench.report(DEMO / "reports" / "quickstart.html")
        print(report_path, f"{report_path.stat().st_size / 1e6:.1f} MB")
        '''),
        code('''
        def column(name: str) -> dict:
            return {ext: rep.values[name].round(6).to_dict() for ext, rep in reports.items() if name in rep.values}

        summary = {
            "png_vs_workspace": png_vs_workspace,
            "png_fd": {n: [float(f.at[n, "fd"]) for f in (quick.values, quick.low, quick.high)] for n in caches},
            "fd": column("fd"), "precision": column("precision"), "recall": column("recall"),
            "coverage": column("coverage"), "report": str(report_path),
        }
        print(json.dumps(summary))
        ''', "summary"),
    ])


# ---------------------------------------------------------------------------------------------------- 02


def fid_vs_humans() -> nbformat.NotebookNode:
    return notebook([
        md("""
        # 2 · FID vs human judgments

        Stein et al. (NeurIPS 2023) asked people to tell real images from generated ones for 41
        models on four datasets. A model whose images fool people more often has a higher **human
        error rate**. Does a metric order the models the way people do? Part 1 answers this with the
        study's data and the published metric values shipped in `data/`: Fréchet distance in
        Inception-v3 features (FID) against Fréchet distance in DINOv2 features (FD_DINOv2).
        Part 2 reproduces, on the demo zoo, the mechanism behind one of FID's failures: it can be
        improved by matching the classifier's class histogram without changing a single image
        (Kynkäänniemi et al., ICLR 2023).
        """),
        md(STAND_INS),
        code(SETUP),
        md("""
        ## Part 1 · Which metric agrees with people?

        For every dataset, Spearman's rank correlation between each metric and the human error
        rate, signed so that **+1 = the metric orders the models exactly as people do** and −1 =
        exactly reversed (distances are better when lower, so their correlation is negated). The
        intervals come from resampling the study's participants. The Inception-FD values are not
        published as a table; `inception_fd_rank` is the models' order by Inception-FD, read off
        the paper's figure.
        """),
        code('''
        from workbench.analysis.agreement import human_agreement
        from workbench.analysis.human_data import load_published_metrics

        published = load_published_metrics()
        agreement = human_agreement(published, n_boot=500, seed=0)
        agreement.display_frame().loc[["fd_dinov2", "inception_fd_rank", "precision_dinov2", "recall_dinov2"]]
        '''),
        code('''
        spearman = agreement.correlations.query("method == 'spearman'")
        per_dataset = spearman.pivot(index="dataset", columns="metric", values="agreement")[["fd_dinov2", "inception_fd_rank"]]
        per_dataset = per_dataset.rename(columns={"fd_dinov2": "FD_DINOv2", "inception_fd_rank": "Inception-FD"})
        per_dataset["n_models"] = spearman.groupby("dataset")["n_models"].max()
        per_dataset["closer to people"] = np.where(per_dataset["FD_DINOv2"] > per_dataset["Inception-FD"],
                                                   "FD_DINOv2", "Inception-FD")
        per_dataset
        '''),
        md("""
        **Reading it.** On CIFAR-10 both metrics follow people (both near +0.96). On ImageNet and
        LSUN-Bedroom, Inception-FD has nothing to do with human judgment (slightly negative) while
        FD_DINOv2 follows it closely: this is the paper's finding, and the reason to report FD in a
        self-supervised feature space. On FFHQ neither is good, and FD_DINOv2 is *not* better:
        faces are a domain where both feature spaces miss what people look at.

        The view below shows the models of one dataset: metric value against human error rate
        (with its standard error), the correlations, and the metric × dataset agreement matrix.
        Change the dataset, the metric and the feature space in the menus (`fd_rank` under
        `inception` is the Inception-FD order).
        """),
        code('''
        from workbench.widgets import HumanAgreement

        human_view = HumanAgreement(dataset="imagenet256", n_boot=500, seed=0)
        human_view
        '''),
        md("""
        ## Part 2 · Gaming the classifier's FD on the demo zoo

        The demo's `vae` is class-conditional: it was asked for every class equally often, so its
        true class proportions are exactly those of the real images. `demo-classifier` (our
        Inception) does not see it that way: on blurry VAE samples it says "shirt" too often and
        "T-shirt/top" too rarely, and so on. `hist-matched` is the `vae` set with some images
        swapped for other samples of the same VAE (from its larger pool, `vae-pool`), chosen so that
        the Top-1 class histogram *the classifier assigns* matches the real images' histogram: each
        predicted class keeps its first samples in pool order, up to the real share. No image got
        better, and the true classes got *less* balanced. Kynkäänniemi et al. showed that this
        lowers FID while FD in a feature space that does not care about ImageNet classes barely
        moves. First the stored sets (FD to the reference, per extractor):
        """),
        code('''
        from workbench.metrics.frechet import fd

        EXTRACTORS = ["demo-classifier", "demo-ssl", "pixels"]
        stored = pd.DataFrame({s: {e: fd(ws.cache("reference", e).features, ws.cache(s, e).features) for e in EXTRACTORS}
                               for s in ("vae", "hist-matched")})
        stored["change"] = stored["hist-matched"] / stored["vae"] - 1
        stored
        '''),
        md("""
        The two stored sets share every image the matching did not swap, so their difference is
        mostly the matching's; the swapped-in images are still one random draw, and on a few
        percent that matters. `match_topn_histogram` measures the effect without draw noise too:
        the whole pool with uniform weights against the whole pool with the matching weights
        (`fd_original` → `fd_weighted`). With `sampling="prefix"` it also rebuilds the stored pair
        (`fd_uniform` is the `vae` set, `fd_matched` the `hist-matched` set). It tells how the
        matching moved the classes as well: the classifier's histogram and, since the VAE's
        classes are known, the true one.
        """),
        code('''
        from workbench.analysis.topn_matching import match_topn_histogram

        matching = match_topn_histogram(
            ws.cache("reference", "demo-classifier"), ws.cache("vae-pool", "demo-classifier"),
            features={e: (ws.cache("reference", e), ws.cache("vae-pool", e)) for e in EXTRACTORS},
            n=1, size=ws.size("hist-matched"), sampling="prefix", seed=0)
        fd_table = matching.to_frame("fd").set_index("extractor")
        tv = matching.to_frame("divergence").set_index("set")["tv"]

        def true_tv(rows):
            """Total variation between the true classes of pool rows and the reference's classes."""
            share = np.bincount(ws.cache("vae-pool", "pixels").labels[rows], minlength=10) / len(rows)
            real = np.bincount(ws.cache("reference", "pixels").labels, minlength=10) / ws.size("reference")
            return 0.5 * float(np.abs(share - real).sum())

        true_tv_uniform, true_tv_matched = true_tv(matching.uniform_indices), true_tv(matching.indices)
        print(f"classifier's class histogram vs the real one (TV): {tv['uniform resample']:.3f} (vae) "
              f"-> {tv['matched resample']:.3f} (hist-matched)")
        print(f"true class histogram vs the real one (TV):         {true_tv_uniform:.3f} (vae) "
              f"-> {true_tv_matched:.3f} (hist-matched)")
        fd_table[["fd_original", "fd_weighted", "weighted_relative_change", "fd_uniform", "fd_matched", "relative_change"]]
        '''),
        code('''
        gain = fd_table["weighted_relative_change"]
        print(f"FD change from matching the demo-classifier's class histogram (whole pool, weighted): "
              f"classifier {gain['demo-classifier']:+.1%}, unsupervised {gain['demo-ssl']:+.1%}, pixels {gain['pixels']:+.1%}")
        if gain["demo-classifier"] < 0 and gain["demo-classifier"] < min(gain["demo-ssl"], gain["pixels"]):
            print("-> the classifier's FD improves more than the others: it is gamed by its own class histogram.")
        else:
            print("-> on this build the classifier's FD is not gamed more than the others.")
        '''),
        md("""
        **Reading it.** Matching moves the classifier's class histogram onto the real one while the
        true class proportions move *away* from the real ones, and still the classifier's FD
        drops: its features are organised by its own decisions, so agreeing with its histogram
        looks like realism to it. The unsupervised and pixel FDs move less or get worse (they see
        the true classes drift). The effect is some percent here, on ten classes; with Inception's
        1,000 ImageNet classes, most of which do not exist in faces or bedrooms, there is far more
        room to game, which is what Kynkäänniemi et al. measured. It needs trained models: with a
        very poor VAE the classifier's class of a sample tracks its quality, and matching then
        improves every FD. The class view below shows the VAE's predicted histogram against the
        real one; "Match histograms" runs the same experiment on the `vae` set and adds the
        matched bars. Pick a class to see its real and generated samples side by side.
        """),
        code('''
        from workbench.widgets import ClassHistogram, Selection

        classes = ClassHistogram(ws, selection=Selection(model="vae"))
        classes
        '''),
        code('''
        classes.run_matching()  # what the "Match histograms" button does (in the background)
        classes.wait()
        classes.matching.to_frame("fd")[["extractor", "fd_original", "fd_weighted", "weighted_relative_change"]]
        '''),
        code('''
        summary = {
            "human_agreement": {d: {"fd_dinov2": float(r["FD_DINOv2"]), "inception_fd_rank": float(r["Inception-FD"])}
                                for d, r in per_dataset.iterrows()},
            "stored_fd": {e: {s: float(stored.at[e, s]) for s in ("vae", "hist-matched")} for e in EXTRACTORS},
            "stored_change": stored["change"].to_dict(),
            "stored_is_rebuilt": bool(np.allclose(fd_table["fd_matched"], stored.loc[fd_table.index, "hist-matched"], rtol=1e-4)
                                      and np.allclose(fd_table["fd_uniform"], stored.loc[fd_table.index, "vae"], rtol=1e-4)),
            "weighted_relative_change": gain.to_dict(),
            "matched_relative_change": fd_table["relative_change"].to_dict(),
            "tv_uniform": float(tv["uniform resample"]), "tv_matched": float(tv["matched resample"]),
            "true_tv_uniform": true_tv_uniform, "true_tv_matched": true_tv_matched,
        }
        print(json.dumps(summary))
        ''', "summary"),
    ])


# ---------------------------------------------------------------------------------------------------- 03


def compare_extractors_nb() -> nbformat.NotebookNode:
    return notebook([
        md("""
        # 3 · Same models, different extractors

        A metric is a distance in some feature space, and the feature space decides what counts
        as a difference. This notebook ranks the demo's models under each extractor, measures how
        well the rankings agree, maps the embeddings in 2-D, and asks which individual samples
        drive a metric: the generated images that raise FD most, the real images a model fails to
        cover.
        """),
        md(STAND_INS),
        code(SETUP),
        md("""
        ## Rankings and their agreement

        The same metric reports as in notebook 1 (read back from the workspace's `.workbench`
        folder when notebook 1 has run). Rank 1 is the best model under that extractor.
        """),
        code(REPORTS + textwrap.dedent('''
        from workbench.widgets.workspace_metrics import long_metric_frame

        values = long_metric_frame(reports)
        fd_values = values.query("metric == 'fd'").pivot(index="model", columns="extractor", values="value")[list(reports)]
        fd_values.rank().astype(int).sort_values("demo-ssl")
        ''')),
        md("""
        How much can the ranking move because of *which* images each model happened to generate?
        `compare_extractors` resamples every model's generated images (the same rows under every
        extractor), re-ranks, and gives each rank and each extractor-vs-extractor Kendall τ an
        interval. (FD replicates use its first-order expansion, `fd_bootstrap="linear"`, which
        costs one pass over the samples.)
        """),
        code('''
        from workbench.analysis.extractor_ranking import compare_extractors

        pairs = {e: {m: (ws.cache(ws.reference, e), ws.cache(m, e)) for m in ws.generated} for e in ws.extractors}
        comparison = compare_extractors(pairs, metrics="fd", n_boot=100, fd_bootstrap="linear", seed=0)
        kendall = comparison.agreement.query("method == 'kendall'")[["extractor_a", "extractor_b", "correlation", "ci_low", "ci_high"]]
        kendall
        '''),
        md("""
        The bump chart draws each model's rank under each extractor (click a line to select a model
        and see the samples that move the chosen metric); the matrix is the rank agreement between
        extractors. All three put `ideal` and the `memorizer` in the top two places, in an order
        that is sampling noise (FD rewards copies, see notebook 4); below that, the order of the flawed sets depends on what each feature space is
        sensitive to: blur, for instance, changes few pixels but a lot of a classifier's features.
        """),
        code('''
        from workbench.widgets import ExtractorComparison, Selection

        selection = Selection(model="mode-dropper", extractor="demo-ssl")
        extractor_view = ExtractorComparison(ws, reports=reports, selection=selection)
        extractor_view
        '''),
        md("""
        ## The embeddings in 2-D

        PCA of the reference and four generated sets in `demo-ssl` features (1,000 points per
        set). Hover a point to see its image; lasso points to send them to a sample grid. UMAP
        separates the classes better but costs a minute or two the first time (numba compiles
        it): press "Compute UMAP" in the view or set `RUN_UMAP = True`. The layout is saved in the
        workspace and reused.
        """),
        code('''
        from workbench.widgets import EmbeddingMap

        embedding = EmbeddingMap(ws, selection=selection, extractor="demo-ssl", max_points=1000, seed=0,
                                 sets=["reference", "ideal", "mode-dropper", "blurry", "vae"])
        embedding
        '''),
        code('''
        RUN_UMAP = False  # True: UMAP of the same points (the first fit in a session compiles numba: 1-2 minutes)
        if RUN_UMAP:
            embedding.compute_umap()
            embedding.wait()
        print("projection shown:", embedding.projection)
        '''),
        md("""
        ## Which samples drive the metric?

        **Coverage** asks, for every *real* image, whether some generated image falls in its
        neighbourhood. For the mode-dropper, the real images left uncovered are its missing
        classes: the per-class coverage below collapses for bags and ankle boots, which nothing
        else resembles (coats are partly covered by the pullovers and shirts it does generate), and
        stays high for the other classes. The grid under the comparison view shows the uncovered
        real images.
        """),
        code('''
        from workbench.demo import load_workspace

        extractor_view.run_contributions("mode-dropper", "coverage", "demo-ssl")
        extractor_view.wait()
        labels = ws.meta(ws.reference)["class_name"].to_numpy()
        dropped = load_workspace(DEMO)["sets"]["mode-dropper"]["dropped_class_names"]
        per_class = pd.Series(extractor_view.contributions.scores).groupby(labels).mean().rename("coverage")
        print("classes missing from the mode-dropper:", dropped)
        per_class.sort_values().to_frame().T
        '''),
        md("""
        **FD contributions** score every *generated* image by how much FD would drop without it
        (`fd_contributions`, an exact first-order expansion). Do the classifier and the
        unsupervised extractor blame the same VAE samples? The grid shows the 24 VAE samples that
        raise the unsupervised FD most.
        """),
        code('''
        from workbench.analysis.attribution import fd_contributions
        from workbench.widgets import SampleGrid, Samples

        contributions = {e: fd_contributions(ws.cache(ws.reference, e), ws.cache("vae", e)) for e in ("demo-classifier", "demo-ssl")}
        TOP = 100
        top = {e: set(r.top(TOP)["index"]) for e, r in contributions.items()}
        overlap = len(top["demo-classifier"] & top["demo-ssl"]) / TOP
        print(f"of the {TOP} VAE samples that raise FD most, {overlap:.0%} are the same under both extractors")

        grid = SampleGrid(ws, follow_selection=False, page_size=24, columns=8, title="FD contributions", detail_px=112)
        grid.put_score("fd contribution (demo-ssl)", "vae", contributions["demo-ssl"].scores)
        grid.show(Samples.of("vae", np.arange(ws.size("vae"))), "vae: the samples that raise demo-ssl FD most",
                  sort_by="fd contribution (demo-ssl)", descending=True)
        grid
        '''),
        code('''
        summary = {
            "fd_rank": {e: fd_values[e].rank().astype(int).to_dict() for e in fd_values},
            "kendall_fd": {f"{r.extractor_a}|{r.extractor_b}": float(r.correlation) for r in kendall.itertuples()},
            "mode_dropper_dropped": dropped,
            "mode_dropper_class_coverage": per_class.round(4).to_dict(),
            "fd_top_overlap": overlap,
            "umap": RUN_UMAP,
        }
        print(json.dumps(summary))
        ''', "summary"),
    ])


# ---------------------------------------------------------------------------------------------------- 04


def memorization_nb() -> nbformat.NotebookNode:
    return notebook([
        md("""
        # 4 · Find the memorizer

        One set of the zoo, the `memorizer`, is made of its model's training images with a little
        noise: a model that learned to copy. This notebook shows why FD alone rewards it, and how
        nearest-neighbour distances to the training set, AuthPct (Alaa et al. 2022) and the
        data-copying test C_T (Meehan et al. 2020) find it.
        """),
        md(STAND_INS),
        code(SETUP),
        md("""
        ## FD rewards copying

        FD compares the generated set's mean and covariance with the real images'. Copies of
        training images have the statistics of real images, so the memorizer's FD is as good as
        that of the `ideal` set of genuinely new real images: the two take the first two places
        under every extractor, and which comes first is sampling noise.
        """),
        code('''
        from workbench.metrics.frechet import fd

        fd_table = pd.DataFrame({e: {m: fd(ws.cache(ws.reference, e).features, ws.cache(m, e).features) for m in ws.generated}
                                 for e in ws.extractors})
        fd_rank = fd_table.rank().astype(int)
        fd_table.assign(**{f"rank ({e})": fd_rank[e] for e in ws.extractors}).sort_values("demo-ssl")
        '''),
        md("""
        ## Nearest training samples

        For every generated image we search its nearest training images (exact search) in the
        features of the classifier and of the unsupervised encoder. A copy sits much closer to a
        training image than a new image does. How much closer counts as a copy is calibrated on
        real images the model never saw (a sample of the reference set): the threshold is the
        distance below which only 1% of those unseen real images fall, so about 1% of genuinely new
        images are flagged by chance (the false-positive estimate).

        **AuthPct** is the share of generated images farther from their nearest training image than
        that training image is from its own nearest neighbour (higher = more authentic; unseen real
        images do not score 100% either, see the first line of the output). **C_T** compares, cell
        by cell, how close generated and unseen real images lie to the training set: strongly
        negative means copying, positive means the samples stay farther from the training data than
        new real images do (underfitting).

        To stay fast on the full demo (50,000 training images) we search for 1,000 images of each
        model at once and calibrate on 2,000 reference images.
        """),
        code('''
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
            print(f"{ext}: copy threshold {search.threshold:.3g}; unseen real images: AuthPct {search.test_auth_pct:.1f}%, "
                  f"flagged {search.test_flag_rate:.1%}")
        memo = pd.concat(tables, axis=1)
        memo.sort_values(("demo-classifier", "copy rate"), ascending=False)
        '''),
        md("""
        **Reading it.** The memorizer is flagged on every count: the highest share of images closer
        to a training image than 99% of unseen real images are, an AuthPct far below that of real
        images, a strongly negative C_T, and yet one of the two best FDs. The other sets are flagged at
        about the false-positive rate. Both extractors flag most of the memorizer's images; how
        many depends on the features, and a weakly trained encoder flags fewer, since it maps the
        jittered copies farther from their originals.
        The blurry and VAE sets lie *farther* from the training set than unseen real images
        (positive C_T, high AuthPct): authenticity is not quality.

        ## Browse the pairs

        `MemorizationBrowser` shows each generated image next to its 5 nearest training images,
        most suspicious first; flagged rows are outlined in red. Move the threshold slider and the
        copy count follows (the flags are recomputed from the stored distances, no new search).
        Clicking a row selects the image and its neighbours in the shared selection.
        """),
        code('''
        from workbench.widgets import MemorizationBrowser, Selection

        browser = MemorizationBrowser(ws, selection=Selection(model="memorizer", extractor="demo-classifier"),
                                      test_set="reference")
        browser
        '''),
        code('''
        browser.wait()  # the search runs in the background; the view fills in when it is done
        calibrated = browser.threshold.value
        counts = {}
        for factor in (0.5, 1.0, 2.0):
            browser.threshold.value = calibrated * factor
            counts[factor] = browser.copy_count
            print(f"threshold {browser.threshold.value:8.4g}: {browser.copy_count:5d} of {len(browser.report.ratio)} flagged")
        browser.threshold.value = calibrated
        browser.report.most_suspicious(5)
        '''),
        code('''
        summary = {
            "memorization": {ext: table.round(6).to_dict(orient="index") for ext, table in tables.items()},
            "test_flag_rate": {ext: float(s.test_flag_rate) for ext, s in searches.items()},
            "test_auth_pct": {ext: float(s.test_auth_pct) for ext, s in searches.items()},
            "fd_rank": fd_rank.to_dict(),
            "browser_counts": {str(k): int(v) for k, v in counts.items()},
        }
        print(json.dumps(summary))
        ''', "summary"),
    ])


NOTEBOOKS = {
    "01_quickstart.ipynb": quickstart,
    "02_fid_vs_humans.ipynb": fid_vs_humans,
    "03_compare_extractors.ipynb": compare_extractors_nb,
    "04_memorization.ipynb": memorization_nb,
}


def main() -> None:
    for name, make in NOTEBOOKS.items():
        nb = with_ids(make(), name)
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
