"""``MemorizationBrowser``: generated samples next to their nearest training samples, most suspicious first.

Built on :func:`workbench.analysis.memorization.memorization_report` (the selected model against
the workspace's training set, under the selected extractor). Each row shows a generated sample
and its ``k`` nearest training samples with their distances, rows ordered by the report's
criterion (most suspicious first, :meth:`MemorizationReport.most_suspicious`); flagged rows
are outlined in red. A threshold slider re-flags from the stored distances
(:meth:`MemorizationReport.with_threshold`, milliseconds for 50,000 samples) and the copy count
updates live. The summary shows AuthPct (Alaa et al. 2022) and, when the workspace has a
held-out ``test`` set, the calibrated distance threshold, its false-positive estimate and the
data-copying statistic C_T (Meehan et al. 2020, :func:`workbench.metrics.ct_score.ct_score`;
< 0 means copying). Without a test set the criterion is the authenticity ratio ``d1/d2 <= t``
(1 by default), shown as *uncalibrated* everywhere it is used, with the one command that adds a
test set (:func:`uncalibrated_note`); pass ``test_set="reference"`` to calibrate with the
reference set when it is held-out real data the model never saw.

When the training set (or the generated set) has no stored thumbnails (its caches were extracted
with ``--thumbnails 0``) the browser says so and how to re-extract them
(:func:`missing_thumbnails_note`) and lists the neighbours by row and distance instead of showing
empty boxes. :meth:`MemorizationBrowser.copy_rates` analyses every generated set and orders them
by copy rate (highest first); the static report's section (:meth:`MemorizationBrowser.static_html`)
shows them in that order.

Clicking a row's thumbnail selects that generated sample and its neighbours in the shared
selection (the dashboard's sample grid shows them).

State, as traits (``browser.observe(callback, names="copy_count")``, ``traitlets.link``): ``model``,
``extractor``, ``copy_threshold`` (linked to the :attr:`threshold` slider: ``browser.threshold.value = x``
works as before), read-only ``copy_count``, ``page``, read-only ``page_count``, and what a row click
selects: ``samples``, ``samples_origin``, ``focused``. Also :attr:`report` (at the current threshold),
:attr:`base_report`, :attr:`rows` (the current page), :meth:`compute`, :meth:`wait`, :meth:`click`,
:meth:`analyse`, :meth:`copy_rates`, :meth:`static_html`.
"""

from __future__ import annotations

import html
import shlex
import threading
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import traitlets

from ..workspace import Samples, ScoreStore, Workspace, as_workspace
from .linking import (
    SelectionLink,
    TraitValueError,
    check_samples,
    choice_or_default,
    link_control,
    select_samples,
)
from .sample_grid import gather_thumbnails
from .selection import Selection
from .sprite_canvas import SpriteCanvas
from .tasks import BackgroundTask, set_status, status_widget
from .thumbnails import data_uri, encode_png


def _fmt(v: float) -> str:
    return f"{v:.3g}" if np.isfinite(v) else "inf"


_NOTE_STYLE = (
    "margin:4px 0;padding:6px 8px;border-left:4px solid #d9a400;background:#fff8e1;font-size:12px;max-width:980px"
)


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _workspace_arg(ws: Workspace) -> str:
    """The workspace folder as a command-line argument (``WS`` for caches given directly)."""
    return shlex.quote(str(ws.root)) if ws.root is not None else "WS"


def _needs_index(ws: Workspace) -> bool:
    """True when the workspace was found by scanning (no ``workspace.json``: ``workspace add`` needs one)."""
    return ws.root is not None and not (ws.root / "workspace.json").is_file()


def extract_command(
    ws: Workspace, extractor: str, source: str = "DIR", *, like: str | None = None, thumbnails: int | None = None
) -> str:
    """The ``workbench extract`` command line that makes a cache of ``source`` with the extractor
    (name and weights) of the workspace's cache of set ``like`` by ``extractor`` (default: the
    reference's). With ``thumbnails`` (re-extracting the same images) it adds ``--thumbnails N``
    and keeps that cache's ``--limit`` / ``--labels`` / ``--max-pixels``, so the rows stay the same.

    Example: ``workbench extract DIR -e pixels -w none``.
    """
    like = like if like is not None else ws.reference
    name, weights, content = extractor, None, {}
    if ws.has(like, extractor):
        manifest = ws.cache(like, extractor).manifest
        info = manifest.get("extractor") or {}
        name = str(info.get("name") or extractor)
        weights = (info.get("weights") or {}).get("spec")
        content = manifest.get("options") or {}
    parts = ["workbench extract", shlex.quote(source) if source != "DIR" else source, "-e", shlex.quote(name)]
    if weights not in (None, "default"):
        parts += ["-w", shlex.quote(str(weights))]
    if thumbnails is not None:
        for key, flag in (("limit", "--limit"), ("labels", "--labels"), ("max_pixels", "--max-pixels")):
            value = content.get(key)
            if value is not None and not str(value).startswith("array:"):
                parts += [flag, shlex.quote(str(value))]
        parts += ["--thumbnails", str(int(thumbnails))]
    return " ".join(parts)


def _variant(ws: Workspace, extractor: str) -> str:
    """`` (variant 8px)``-style note of the reference cache's extractor variant ('' when unknown)."""
    if not ws.has(ws.reference, extractor):
        return ""
    variant = (ws.cache(ws.reference, extractor).manifest.get("extractor") or {}).get("variant")
    return (
        f", with the options of your other {html.escape(extractor)} caches (variant {html.escape(variant)})"
        if variant
        else ""
    )


def uncalibrated_note(ws: Workspace, extractor: str) -> str:
    """HTML: why the ratio criterion is uncalibrated and the one line that adds a held-out test set.

    Shown wherever the ratio criterion is used (no ``test`` set): the browser's notes, its copy
    count and the static report.
    """
    root = _workspace_arg(ws)
    index = f"{_code(f'workbench workspace init {root} --scan')} first, then " if _needs_index(ws) else ""
    return (
        f"<div class='wb-uncalibrated' style='{_NOTE_STYLE}'>⚠ <b>uncalibrated</b>: there is no held-out test "
        "set, so a generated sample is flagged when its authenticity ratio d1/d2 ≤ threshold (Alaa et al. 2022), "
        "a weak copy detector whose false-positive rate on new real images is unknown (it flags many samples in "
        "dense regions of the training set). Add real images the model never saw as a test set to calibrate a "
        f"distance threshold: {_code('workbench evaluate ... --test DIR')}, or {index}"
        f"{_code(f'workbench workspace add {root} CACHE --set test --role test')} "
        f"(CACHE from {_code(extract_command(ws, extractor))}{_variant(ws, extractor)}).</div>"
    )


def missing_thumbnails_note(ws: Workspace, set_name: str) -> str | None:
    """HTML: the set has no stored thumbnails (extracted with ``--thumbnails 0``) and how to fix it;
    None when it has thumbnails."""
    if ws.thumbnail_px(set_name) > 0:
        return None
    role = ws.role(set_name)
    what = {"train": "training set", "generated": "generated set", "reference": "reference set"}.get(role, "set")
    caches = ws.caches_of(set_name)
    ext = next(iter(caches))
    source = str((caches[ext].manifest.get("source") or {}).get("path") or "DIR")
    root = _workspace_arg(ws)
    if role == "train":
        shown = "its nearest training images cannot be shown (their rows and distances are listed instead)"
        evaluate = " (<code>workbench evaluate ... --train DIR</code> keeps 64 px thumbnails of the training set)"
    else:
        shown = "its images cannot be shown (grey boxes stand in for them)"
        evaluate = ""
    return (
        f"<div class='wb-no-thumbnails' style='{_NOTE_STYLE}'>No thumbnails of the {what} "
        f"“{html.escape(set_name)}”: its cache{'s were' if len(caches) > 1 else ' was'} extracted with "
        f"{_code('--thumbnails 0')}, so {shown}. "
        f"Re-extract it with thumbnails, {_code(extract_command(ws, ext, source, like=set_name, thumbnails=64))}, "
        f"and list that cache as set “{html.escape(set_name)}” in place of the old one "
        f"({_code(f'workbench workspace add {root} CACHE --set {shlex.quote(set_name)} --role {role}')}){evaluate}."
        "</div>"
    )


class MemorizationBrowser(W.VBox):
    """Memorization browser (see the module docstring).

    Traits (observe them, link them, set them):

    * ``model``, ``extractor``: the generated set analysed and its features (linked to the
      shared selection, whose "" or unknown values mean the first generated set / extractor);
      changing either shows (or computes) that analysis.
    * ``copy_threshold``: the distance (or d1/d2 ratio) at or below which a generated sample is
      flagged; linked to the :attr:`threshold` slider and kept within its range.
    * ``copy_count`` (read-only): how many are flagged at ``copy_threshold``.
    * ``page`` and read-only ``page_count``: the rows shown.
    * ``samples`` / ``samples_origin`` / ``focused``: what a row click selected (the generated
      sample and its neighbours; linked to the selection).

    Args:
        workspace: workspace, folder or caches (needs a set with role ``train``).
        selection, scores: shared with the other views.
        k: training neighbours per generated sample.
        test_set: held-out real set for calibration and C_T: ``"auto"`` (the workspace's
            ``test`` set, if any), a set name (e.g. ``"reference"``) or None.
        rows_per_page: generated samples per page.
        background: search neighbours in a thread.
        compute: start the analysis at once (else on :meth:`compute`).
        display_px: thumbnail size on screen.
    """

    selection = traitlets.Instance(Selection, read_only=True, help="the shared selection")
    model = traitlets.Unicode("", help="the generated set analysed")
    extractor = traitlets.Unicode("", help="the features of the analysis")
    copy_threshold = traitlets.Float(1.0, help="flag generated samples at or below this distance (or ratio)")
    copy_count = traitlets.Int(0, read_only=True, help="generated samples flagged at copy_threshold")
    page = traitlets.Int(0, help="page of rows shown (from 0)")
    page_count = traitlets.Int(1, read_only=True, help="number of pages")
    samples = traitlets.Instance(
        Samples,
        allow_none=True,
        default_value=None,
        help="the generated sample and its neighbours a row click selected",
    )
    samples_origin = traitlets.Unicode("", help="which row the samples come from")
    focused = traitlets.Tuple(allow_none=True, default_value=None, help="(set, index) of the clicked sample")

    def __init__(
        self,
        workspace: Workspace | Any,
        *,
        selection: Selection | None = None,
        scores: ScoreStore | None = None,
        k: int = 5,
        test_set: str | None = "auto",
        rows_per_page: int = 8,
        background: bool = True,
        compute: bool = True,
        display_px: int = 56,
    ) -> None:
        self.ws = as_workspace(workspace)
        if self.ws.train is None:
            raise ValueError(
                f"the memorization browser needs a training set: give a set the role 'train' (sets: {self.ws.sets})"
            )
        if isinstance(k, bool) or int(k) < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}")
        selection = selection if selection is not None else Selection()
        self.scores = scores if scores is not None else ScoreStore(self.ws)
        self.k = int(k)
        self.test_set = self.ws.test if test_set == "auto" else test_set
        if self.test_set is not None and self.test_set not in self.ws.sets:
            raise ValueError(f"test_set {self.test_set!r} is not a set of the workspace; sets: {self.ws.sets}")
        self.rows_per_page = int(rows_per_page)
        self.background = background
        self.display_px = display_px
        self._reports: dict[tuple[str, str], Any] = {}
        self._ct: dict[tuple[str, str], float | None] = {}
        self._task: BackgroundTask | None = None
        self._applied: tuple[int, float] | None = None  # (id of the base report, threshold) shown
        self.base_report = None
        self.report = None
        self._order = np.zeros(0, dtype=np.int64)
        self.rows = pd.DataFrame()

        self.threshold = W.FloatSlider(
            value=1.0,
            min=0.0,
            max=2.0,
            step=0.01,
            description="threshold",
            continuous_update=True,
            readout_format=".3g",
            layout=W.Layout(width="420px"),
        )
        self.threshold.add_class("wb-threshold")
        self.copy_label = W.HTML("")
        self.copy_label.add_class("wb-copy-count")
        self.summary = W.HTML("<i>not computed yet</i>")
        self.summary.add_class("wb-memorization-summary")
        self.status = status_widget()
        self.prev_button = W.Button(description="◀", layout=W.Layout(width="40px"))
        self.prev_button.add_class("wb-prev")
        self.next_button = W.Button(description="▶", layout=W.Layout(width="40px"))
        self.next_button.add_class("wb-next")
        self.page_label = W.HTML("")
        self.compute_button = W.Button(
            description="Find nearest training samples", icon="search", layout=W.Layout(width="auto")
        )
        self.compute_button.add_class("wb-memorization-compute")
        self.canvas = SpriteCanvas()
        self.canvas.add_class("wb-memorization-rows")
        self.notes = W.HTML("")
        self.notes.add_class("wb-memorization-notes")
        self.neighbours_html = W.HTML("")
        self.neighbours_html.add_class("wb-memorization-neighbours")
        header = W.HTML(
            "<b>Memorization</b> <span style='color:#666'>— each row: a generated sample (left) and its "
            f"{self.k} nearest training samples, most suspicious first; red = flagged as likely copy"
            "</span>"
        )
        super().__init__(
            [
                header,
                W.HBox([self.compute_button, self.status]),
                self.notes,
                self.summary,
                W.HBox([self.threshold, self.copy_label]),
                W.HBox([self.prev_button, self.page_label, self.next_button]),
                self.canvas,
                self.neighbours_html,
            ]
        )
        self.add_class("wb-memorization")
        self.set_trait("selection", selection)

        self._selection_link = SelectionLink(
            selection,
            self,
            {
                "model": "model",
                "extractor": "extractor",
                "samples_origin": "samples_origin",
                "samples": "samples",
                "focused": "focus",
            },
            resolve={"model": self._known_model, "extractor": self._known_extractor},
        )
        link_control(self, "copy_threshold", self.threshold)
        self.observe(self._on_copy_threshold, names="copy_threshold")
        self.observe(lambda _: self._render(), names="page")
        self.observe(lambda _: self._on_model_change(), names=["model", "extractor"])
        self.prev_button.on_click(lambda _: self.go(self.page - 1))
        self.next_button.on_click(lambda _: self.go(self.page + 1))
        self.compute_button.on_click(lambda _: self.compute())
        self.canvas.observe(self._on_click, names="clicked")
        self._update_notes()
        if compute:
            self.compute()

    # ------------------------------------------------------------------ state

    def _known_model(self, name: str) -> str:
        return name if name in self.ws.generated else self.ws.generated[0]

    def _known_extractor(self, name: str) -> str:
        return name if name in self.ws.extractors else self.ws.extractors[0]

    @traitlets.validate("model")
    def _valid_model(self, proposal: Any) -> str:
        return choice_or_default("model", proposal["value"], self.ws.generated)  # "": the first generated set

    @traitlets.validate("extractor")
    def _valid_extractor(self, proposal: Any) -> str:
        return choice_or_default("extractor", proposal["value"], self.ws.extractors)  # "": the first

    @traitlets.validate("copy_threshold")
    def _valid_copy_threshold(self, proposal: Any) -> float:
        t = float(proposal["value"])
        low, high = self.threshold.min, self.threshold.max
        if not (np.isfinite(t) and low <= t <= high):
            raise TraitValueError(f"copy_threshold must be in [{low:.4g}, {high:.4g}] (the slider's range); got {t!r}")
        return t

    @traitlets.validate("page")
    def _valid_page(self, proposal: Any) -> int:
        page = int(proposal["value"])
        if not 0 <= page < self.page_count:
            raise TraitValueError(f"page must be in [0, {self.page_count}); got {page}")
        return page

    @traitlets.validate("samples")
    def _valid_samples(self, proposal: Any) -> Samples | None:
        return check_samples(proposal["value"], self.ws)

    # ------------------------------------------------------------------ computing

    def compute(self) -> BackgroundTask | None:
        """Run the analysis of the selected model and extractor (background unless disabled);
        None when it is already there."""
        key = (self.model, self.extractor)
        if key in self._reports:
            self._show(key)
            return None
        if self._task is not None and self._task.running:
            return self._task
        model, ext = key
        ws = self.ws
        if not (ws.has(model, ext) and ws.has(ws.train, ext)):
            set_status(self.status, f"{model} or {ws.train} has no cache by {ext}", kind="error")
            return None

        def run() -> tuple[Any, float | None]:
            return self._run_analysis(model, ext)

        def done(result: tuple[Any, float | None]) -> None:
            self._store(key, *result)
            self.compute_button.disabled = False
            if (self.model, self.extractor) == key:
                self._show(key)
            elif self.base_report is None and self.background:
                # the selection moved on while this ran: compute what is selected now, once this task is over
                task = self._task

                def later() -> None:
                    if task is not None:
                        task.join()
                    self.compute()

                threading.Thread(target=later, daemon=True).start()

        self.compute_button.disabled = True
        self._task = BackgroundTask(
            run,
            label=f"nearest training samples of {model} ({ext})",
            status=self.status,
            on_done=done,
            on_error=lambda e: setattr(self.compute_button, "disabled", False),
            background=self.background,
        ).start()
        return self._task

    def _test_for(self, extractor: str) -> str | None:
        """The held-out set used under ``extractor`` (None: the ratio criterion)."""
        return self.test_set if self.test_set and self.ws.has(self.test_set, extractor) else None

    def _run_analysis(self, model: str, ext: str) -> tuple[Any, float | None]:
        """The memorization report of ``model`` under ``ext`` and C_T (None without a test set)."""
        from ..analysis.memorization import memorization_report

        ws = self.ws
        if not (ws.has(model, ext) and ws.has(ws.train, ext)):
            raise ValueError(f"{model} or {ws.train} has no cache by {ext}")
        test = self._test_for(ext)
        train_c, fake_c = ws.cache(ws.train, ext), ws.cache(model, ext)
        test_c = ws.cache(test, ext) if test else None
        rep = memorization_report(train_c, fake_c, test_c, k=min(self.k, len(train_c)), progress=False)
        c_t = None
        if test_c is not None:
            from ..metrics.ct_score import ct_score

            try:
                c_t = float(ct_score(train_c.features, test_c.features, fake_c.features, seed=0).c_t)
            except ValueError:
                c_t = None  # too few samples per cell
        return rep, c_t

    def _store(self, key: tuple[str, str], rep: Any, c_t: float | None) -> None:
        self._reports[key] = rep
        self._ct[key] = c_t
        self.scores.put(key[0], "train_distance", rep.distances[:, 0], extractor=key[1])

    def analyse(self, model: str, extractor: str | None = None) -> Any:
        """The :class:`~workbench.analysis.memorization.MemorizationReport` of generated set ``model``
        under ``extractor`` (default: the selected one) at its own threshold, computed now
        (synchronously) unless already there. Does not change what the browser shows."""
        ext = extractor or self.extractor
        if model not in self.ws.generated:
            raise ValueError(f"{model!r} is not a generated set; generated sets: {self.ws.generated}")
        key = (model, ext)
        if key not in self._reports:
            self._store(key, *self._run_analysis(model, ext))
        return self._reports[key]

    def copy_rates(self, extractor: str | None = None) -> pd.DataFrame:
        """One row per generated set, the highest copy rate first: ``model, copy_rate, n_flagged,
        n_generated, criterion, calibrated, threshold, auth_pct, c_t, error``.

        Every generated set is analysed under ``extractor`` (default: the selected one) at its own
        threshold (the calibrated one with a test set, else ratio 1: ``calibrated`` False); a set
        whose analysis fails has ``error`` set and NaN values, listed last.
        """
        ext = extractor or self.extractor
        rows = []
        for model in self.ws.generated:
            row: dict[str, Any] = {"model": model, "error": ""}
            try:
                rep = self.analyse(model, ext)
            except Exception as exc:  # shown in the table; the other sets stand
                row.update(
                    copy_rate=np.nan,
                    n_flagged=0,
                    n_generated=0,
                    criterion="",
                    calibrated=False,
                    threshold=np.nan,
                    auth_pct=np.nan,
                    c_t=np.nan,
                    error=f"{type(exc).__name__}: {exc}",
                )
            else:
                c_t = self._ct.get((model, ext))
                row.update(
                    copy_rate=float(rep.copy_rate),
                    n_flagged=int(rep.n_flagged),
                    n_generated=len(rep.ratio),
                    criterion=rep.criterion,
                    calibrated=rep.criterion == "distance",
                    threshold=float(rep.threshold),
                    auth_pct=float(rep.auth_pct),
                    c_t=np.nan if c_t is None else float(c_t),
                )
            rows.append(row)
        frame = pd.DataFrame(rows)
        order = np.argsort(-frame["copy_rate"].fillna(-np.inf).to_numpy(), kind="stable")
        return frame.iloc[order].reset_index(drop=True)

    def wait(self, timeout: float | None = 600) -> None:
        """Wait for a running analysis (its error is raised here)."""
        if self._task is not None:
            self._task.wait(timeout)

    def join(self, timeout: float | None = 600) -> bool:
        """Wait for a running analysis without raising its error (shown in :attr:`status`); True when none runs."""
        return self._task is None or self._task.join(timeout)

    def _on_model_change(self) -> None:
        key = (self.model, self.extractor)
        if key in self._reports:
            self._show(key)
        elif self.base_report is not None or (self._task is not None and self._task.running):
            self.base_report = self.report = None
            self.set_trait("copy_count", 0)
            self.summary.value = "<i>computing…</i>"
            self._update_notes()
            self.compute()

    def _update_notes(self) -> None:
        """The notes above the summary: sets without thumbnails, the uncalibrated criterion."""
        notes = []
        for set_name in dict.fromkeys([self.ws.train, self.model]):
            note = missing_thumbnails_note(self.ws, set_name) if set_name in self.ws.sets else None
            if note:
                notes.append(note)
        base = self.base_report
        uncalibrated = base.criterion == "ratio" if base is not None else self._test_for(self.extractor) is None
        if uncalibrated:
            notes.append(uncalibrated_note(self.ws, self.extractor))
        self.notes.value = "".join(notes)

    def _show(self, key: tuple[str, str]) -> None:
        rep = self._reports[key]
        self.base_report = rep
        self.report = None  # until the threshold is applied: nothing to render yet
        self._applied = None
        self._update_notes()
        if rep.criterion == "distance":
            d = rep.distances[:, 0]
            top = float(max(np.quantile(d, 0.5), 2 * rep.threshold, 1e-12))
        else:
            top = 2.0
        self._order = rep.most_suspicious(len(rep.ratio))["fake_row"].to_numpy()
        self.set_trait("page_count", max(1, -(-len(self._order) // self.rows_per_page)))
        self.page = 0
        # One batch: the slider's new range and the report's own threshold (a value clipped to the old
        # range in between is never applied). hold_sync sends max, step and value in one message;
        # separate messages let the browser snap the old value to the new step and overwrite the
        # calibrated threshold.
        with self.threshold.hold_sync(), self.hold_trait_notifications():
            self.threshold.max = top
            self.threshold.min = 0.0
            self.threshold.step = top / 500
            self.threshold.description = "distance ≤" if rep.criterion == "distance" else "ratio ≤"
            self.copy_threshold = min(rep.threshold, top)
        self._apply_threshold(self.copy_threshold)  # when the value did not change, its observer did not run

    def _on_copy_threshold(self, change: dict[str, Any]) -> None:
        if self.base_report is not None:
            self._apply_threshold(float(change["new"]))

    def _apply_threshold(self, t: float) -> None:
        base = self.base_report
        if self._applied == (id(base), t):
            return
        self._applied = (id(base), t)
        self.report = base if t == base.threshold else base.with_threshold(t)
        rep = self.report
        self.set_trait("copy_count", int(rep.n_flagged))
        m = len(rep.ratio)
        fp = (
            ""
            if rep.test_flag_rate is None
            else (f" · test images flagged {100 * rep.test_flag_rate:.2f}% (false-positive estimate)")
        )
        uncalibrated = (
            " — <b class='wb-uncalibrated-label'>uncalibrated</b> (ratio criterion, no test set)"
            if rep.criterion == "ratio"
            else ""
        )
        self.copy_label.value = (
            f"<b class='wb-copy-number'>{rep.n_flagged}</b> of {m} flagged as likely copies "
            f"({100 * rep.copy_rate:.2f}%){fp}{uncalibrated}"
        )
        self._summary()
        self._render()

    def _summary(self) -> None:
        key = (self.model, self.extractor)
        self.summary.value = self._summary_html(self.model, self.extractor, self.base_report, self._ct.get(key))

    def _summary_html(self, model: str, extractor: str, base: Any, c_t: float | None) -> str:
        parts = [
            f"<b>{html.escape(model)}</b> vs training set <b>{html.escape(self.ws.train)}</b> "
            f"({html.escape(extractor)} features, {base.settings['n_train']} training samples)",
            f"AuthPct <b>{base.auth_pct:.1f}</b>% (authentic = farther from its nearest training sample than "
            "that sample's own nearest neighbour)",
        ]
        if c_t is not None:
            parts.append(
                f"C<sub>T</sub> <b>{c_t:+.2f}</b> (&lt; 0: copying, &gt; 0: underfitting; test set "
                f"“{html.escape(self._test_for(extractor) or '')}”)"
            )
        if base.criterion == "distance" and base.quantile is not None:
            parts.append(
                f"calibrated threshold {base.threshold:.4g} = the {100 * base.quantile:g}% quantile of the "
                "test images' distances"
            )
        elif base.criterion == "ratio":
            parts.append(
                "criterion: ratio d1/d2 ≤ threshold, <b>uncalibrated</b> (no held-out test set to calibrate a distance)"
            )
        parts.append(f"median distance to training {np.median(base.distances[:, 0]):.4g}")
        return "<div style='font-size:12px'>" + "<br>".join(parts) + "</div>"

    # ------------------------------------------------------------------ pages

    def go(self, page: int) -> None:
        """Show page ``page`` of the rows (clipped to the valid range)."""
        self.page = int(min(max(page, 0), self.page_count - 1))

    def _page_rows(self) -> np.ndarray:
        start = self.page * self.rows_per_page
        return self._order[start : start + self.rows_per_page]

    def _render(self) -> None:
        rep = self.report
        if rep is None:
            return
        fakes = self._page_rows()
        k = rep.train_rows.shape[1]
        with_train = self._train_thumbnails()
        pairs = []
        for r in fakes:
            pairs.append((self.model, int(r)))
            if with_train:
                pairs += [(self.ws.train, int(t)) for t in rep.train_rows[r]]
        thumbs = gather_thumbnails(self.ws, Samples.from_pairs(pairs)) if pairs else np.zeros((0, 28, 28, 3), np.uint8)
        cells = []
        for r in fakes:
            flagged = bool(rep.likely_copy[r])
            score = rep.distances[r, 0] if rep.criterion == "distance" else rep.ratio[r]
            cells.append(
                {
                    "caption": f"#{r} · {_fmt(score)}",
                    "title": f"{self.model} #{r}: distance {rep.distances[r, 0]:.4g}, ratio {rep.ratio[r]:.3g}"
                    + (" — likely copy" if flagged else ""),
                    "cls": "wb-query wb-copy" if flagged else "wb-query",
                }
            )
            if not with_train:
                cells[-1]["title"] += "; nearest training samples " + ", ".join(
                    f"{self.ws.train} #{rep.train_rows[r, j]} (d {_fmt(rep.distances[r, j])})" for j in range(k)
                )
                continue
            for j in range(k):
                cells.append(
                    {
                        "caption": f"d {_fmt(rep.distances[r, j])}",
                        "title": f"{self.ws.train} #{rep.train_rows[r, j]} (neighbour {j + 1})",
                    }
                )
        columns = k + 1 if with_train else max(1, len(fakes))
        self.canvas.show(thumbs, cells, columns=columns, display_px=self.display_px)
        self.neighbours_html.value = "" if with_train else self._neighbour_table(rep, fakes)
        self.rows = pd.DataFrame(
            {
                "fake_row": fakes,
                "train_rows": [rep.train_rows[r].tolist() for r in fakes],
                "distance": rep.distances[fakes, 0],
                "ratio": rep.ratio[fakes],
                "likely_copy": rep.likely_copy[fakes],
            }
        )
        self.page_label.value = (
            f"<span style='padding:0 6px'>page {self.page + 1} / {self.page_count} "
            f"({len(self._order)} generated samples)</span>"
        )
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.page_count - 1

    def _train_thumbnails(self) -> bool:
        """True when the training set has stored thumbnails (else neighbours are listed as text)."""
        return self.ws.thumbnail_px(self.ws.train) > 0

    def _neighbour_table(self, rep: Any, fakes: np.ndarray) -> str:
        """HTML table of the neighbours of ``fakes`` (rows and distances), for a training set without thumbnails."""
        k = rep.train_rows.shape[1]
        head = "".join(f"<th>neighbour {j + 1}</th>" for j in range(k))
        body = []
        for r in fakes:
            cells = "".join(
                f"<td>{html.escape(self.ws.train)} #{int(rep.train_rows[r, j])} · d {_fmt(rep.distances[r, j])}</td>"
                for j in range(k)
            )
            mark = " class='wb-copy'" if rep.likely_copy[r] else ""
            body.append(f"<tr{mark}><td>{html.escape(self.model)} #{int(r)}</td>{cells}</tr>")
        return (
            "<table class='wb-table wb-neighbour-table' style='font-size:11px'><thead><tr><th>generated</th>"
            f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )

    def click(self, row_position: int) -> Samples:
        """Select the generated sample of row ``row_position`` of this page and its neighbours
        (``samples``, ``samples_origin`` and ``focused``)."""
        fakes = self._page_rows()
        if not 0 <= row_position < len(fakes):
            raise IndexError(f"row_position must be in [0, {len(fakes)}); got {row_position}")
        r = int(fakes[row_position])
        pairs = [(self.model, r)] + [(self.ws.train, int(t)) for t in self.report.train_rows[r]]
        samples = Samples.from_pairs(pairs)
        with self.hold_trait_notifications():  # the selection receives all three at once
            select_samples(self, samples, f"memorization: {self.model} #{r} and its nearest training samples")
            self.focused = (self.model, r)
        return samples

    def _on_click(self, change: dict[str, Any]) -> None:
        pos = change["new"]
        if pos is None or pos < 0 or self.report is None:
            return
        per_row = self.report.train_rows.shape[1] + 1 if self._train_thumbnails() else 1
        try:
            self.click(pos // per_row)
        finally:
            self.canvas.clicked = -1

    # ------------------------------------------------------------------ static report

    def static_html(self, rows: int = 12, *, extractor: str | None = None) -> str:
        """The report's memorization section: every generated set under ``extractor`` (default the
        selected one) in the order of :meth:`copy_rates` (the highest copy rate first), each with its
        copy rate, summary and ``rows`` most suspicious samples beside their nearest training
        samples (inline PNGs); the uncalibrated criterion and missing thumbnails are explained."""
        ext = extractor or self.extractor
        rates = self.copy_rates(ext)
        test = self._test_for(ext)
        out = [
            f"<p class='wb-note'>Generated sets against the training set “{html.escape(self.ws.train)}” under "
            f"{html.escape(ext)} features, the highest copy rate first; each at "
            + (
                f"the threshold calibrated on the test set “{html.escape(test)}”"
                if test
                else "the ratio threshold 1 (uncalibrated)"
            )
            + ".</p>"
        ]
        note = missing_thumbnails_note(self.ws, self.ws.train)
        if note:
            out.append(note)
        if (rates["criterion"] == "ratio").any():
            out.append(uncalibrated_note(self.ws, ext))
        body = []
        for r in rates.itertuples():
            if r.error:
                body.append(
                    f"<tr><td>{html.escape(r.model)}</td><td colspan='5' class='wb-error' "
                    f"title='{html.escape(r.error)}'>error: {html.escape(r.error)}</td></tr>"
                )
                continue
            criterion = "distance (calibrated)" if r.calibrated else "ratio (uncalibrated)"
            c_t = "–" if not np.isfinite(r.c_t) else f"{r.c_t:+.2f}"
            body.append(
                f"<tr class='wb-memo-rate' data-set='{html.escape(r.model)}'><td>{html.escape(r.model)}</td>"
                f"<td><b>{100 * r.copy_rate:.2f}%</b></td><td>{r.n_flagged} of {r.n_generated}</td>"
                f"<td>{criterion} ≤ {r.threshold:.4g}</td><td>{r.auth_pct:.1f}</td><td>{c_t}</td></tr>"
            )
        out.append(
            "<table class='wb-table wb-copy-rates'><thead><tr><th>generated set</th><th>copy rate ↓</th>"
            "<th>flagged</th><th>criterion</th><th>AuthPct</th><th>C<sub>T</sub></th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )
        for r in rates.itertuples():
            if r.error:
                continue
            rep = self._reports[(r.model, ext)]
            label = "" if r.calibrated else " (uncalibrated)"
            out.append(
                f"<div class='wb-memo-set' data-set='{html.escape(r.model)}'><h3>{html.escape(r.model)} — copy rate "
                f"{100 * r.copy_rate:.2f}%{label} ({r.n_flagged} of {r.n_generated} flagged)</h3>"
                + self._summary_html(r.model, ext, rep, self._ct.get((r.model, ext)))
            )
            try:
                out.append(self._static_rows(r.model, rep, rows))
            except Exception as exc:  # e.g. thumbnails that do not match the features' rows
                out.append(
                    f"<p class='wb-error'>the samples of {html.escape(r.model)} cannot be shown: "
                    f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p>"
                )
            out.append("</div>")
        return "".join(out)

    def _static_rows(self, model: str, rep: Any, rows: int) -> str:
        """The ``rows`` most suspicious samples of ``model`` beside their nearest training samples."""
        k = rep.train_rows.shape[1]
        with_train = self._train_thumbnails()
        out = []
        for r in rep.most_suspicious(rows)["fake_row"].to_numpy():
            pairs = [(model, int(r))] + ([(self.ws.train, int(t)) for t in rep.train_rows[r]] if with_train else [])
            thumbs = gather_thumbnails(self.ws, Samples.from_pairs(pairs))
            figs = [
                f"<figure class='{'wb-copy' if rep.likely_copy[r] else ''}'><img src='{data_uri(encode_png(thumbs[0]))}'"
                f" width='56' height='56' title='{html.escape(model)} #{int(r)}'><figcaption>{html.escape(model)} "
                f"#{int(r)}</figcaption></figure>"
            ]
            for j in range(k):
                t, d = int(rep.train_rows[r, j]), _fmt(rep.distances[r, j])
                caption = f"<figcaption>d {d}</figcaption>"
                if with_train:
                    img = (
                        f"<img src='{data_uri(encode_png(thumbs[j + 1]))}' width='56' height='56' "
                        f"title='{html.escape(self.ws.train)} #{t}'>"
                    )
                else:  # no thumbnail stored: the row and the distance only
                    img = ""
                    caption = f"<figcaption>{html.escape(self.ws.train)} #{t}<br>d {d}</figcaption>"
                figs.append(f"<figure>{img}{caption}</figure>")
            out.append("<div class='wb-memo-row'>" + "".join(figs) + "</div>")
        return "".join(out)
