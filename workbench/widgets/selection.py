"""The shared selection that links every view of a dashboard: model, extractor, class, samples.

Each view takes a :class:`Selection` (or makes its own when used alone), writes to it when the
user picks something (a metric-table row, a lasso in the embedding map, a class bar, a bump-chart
line) and observes the traits it depends on. It is a plain :class:`traitlets.HasTraits`, so
Python code and tests drive the views the same way the browser does::

    sel = Selection()
    table = MetricTable(reports, selection=sel)
    grid = SampleGrid(workspace, selection=sel)
    sel.model = "memorizer"          # the grid now pages through memorizer's samples
    sel.class_name = "Bag"           # ... only those of class "Bag"

Traits:
    model: the selected generated set ("" = none / the first one).
    extractor: the selected feature extractor ("" = the workspace's first).
    class_name: the selected class name ("" = all classes).
    samples: explicitly selected samples (:class:`Samples`, e.g. a lasso), or None.
    samples_origin: which view made ``samples`` (shown as the grid's title).
    focus: ``(set, index)`` of the sample last clicked for a closer look, or None.
"""

from __future__ import annotations

import traitlets

from ..workspace.samples import Samples


class Selection(traitlets.HasTraits):
    """What is selected right now, shared by the views of a dashboard (see the module docstring)."""

    model = traitlets.Unicode("", help="selected generated set")
    extractor = traitlets.Unicode("", help="selected feature extractor")
    class_name = traitlets.Unicode("", help="selected class name ('' = all)")
    samples = traitlets.Instance(Samples, allow_none=True, default_value=None, help="explicitly selected samples")
    samples_origin = traitlets.Unicode("", help="which view selected the samples")
    focus = traitlets.Tuple(allow_none=True, default_value=None, help="(set, index) of the sample looked at")

    def select_samples(self, samples: Samples | None, origin: str = "") -> None:
        """Set ``samples`` and ``samples_origin`` together (observers see the origin already set)."""
        with self.hold_trait_notifications():
            self.samples_origin = origin if samples is not None else ""
            self.samples = samples if samples is None or len(samples) else None

    def clear_samples(self) -> None:
        """Forget the explicit sample selection (grids fall back to the selected model)."""
        self.select_samples(None)
