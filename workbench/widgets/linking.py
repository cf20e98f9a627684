"""How the views hold their state: traits, linked to their controls and to the shared selection.

Every view keeps what a user can choose or observe as :mod:`traitlets` traits (``grid.sort_by``,
``table.model``, ``emap.samples``, ...), so ``view.observe(callback, names="samples")`` and
``traitlets.link((grid, "samples"), (emap, "samples"))`` work on any view. Three kinds of
connection keep those traits, the controls on screen and the dashboard's shared
:class:`~workbench.widgets.selection.Selection` equal:

* :func:`link_control`: a :func:`traitlets.link` (:class:`ControlLink`) between a view's trait
  and a control's ``value`` (a dropdown, toggle buttons, a slider). A selection control's
  ``None`` (no choice, which :func:`replace_options` passes through while it changes the
  options) leaves the trait as it is.
* :class:`SelectionLink`: several traits of a view linked both ways to the same traits of a
  :class:`Selection`, keeping a batch together: when the selection changes its model and its
  extractor at once (``with sel.hold_trait_notifications()``), the view's traits change at once
  as well, so a view never sees the new model with the old extractor (and never starts an
  analysis of that pair).
* plain :func:`traitlets.link` / :func:`traitlets.dlink` for single traits.

Values a trait cannot take are refused by its ``@validate`` method with :class:`TraitValueError`,
which is both a :class:`traitlets.TraitError` and (as the views raised before they had traits) a
:class:`ValueError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import traitlets

from ..workspace import Samples


class TraitValueError(traitlets.TraitError, ValueError):
    """A value a view's trait refuses (a :class:`traitlets.TraitError` and a :class:`ValueError`)."""


def refuse(name: str, value: Any, allowed: Iterable[Any]) -> NoReturn:
    """Raise :class:`TraitValueError`: ``"<name> must be one of [...]; got <value>"``."""
    raise TraitValueError(f"{name} must be one of {list(allowed)}; got {value!r}")


def choice_or_default(name: str, value: Any, allowed: Sequence[Any], default: Any = None) -> Any:
    """``value`` when it is one of ``allowed``; ``""`` (nothing chosen) gives ``default``, or the
    first of ``allowed`` when ``default`` is empty; anything else is refused (:func:`refuse`)."""
    if value == "":
        return default or allowed[0]
    if value not in allowed:
        refuse(name, value, allowed)
    return value


def same(a: Any, b: Any) -> bool:
    """``a == b``, answered at once for the same object (a large :class:`Samples` compares in O(n))."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. numpy arrays: no single truth value
        return False


class ControlLink(traitlets.link):
    """A :func:`traitlets.link` between a view's trait and a control's value in which the control's
    ``None`` (a selection control without a choice) is not passed on: the trait keeps its value."""

    def _update_source(self, change: Any) -> None:
        if change.new is None:
            return
        super()._update_source(change)


def link_control(
    owner: traitlets.HasTraits,
    name: str,
    control: traitlets.HasTraits,
    attr: str = "value",
    *,
    to_control: Callable[[Any], Any] | None = None,
    from_control: Callable[[Any], Any] | None = None,
) -> ControlLink:
    """Link ``owner.<name>`` with ``control.<attr>``; the control starts at the owner's value.

    A ``None`` from the control (a dropdown without a choice, e.g. while :func:`replace_options`
    changes its options) leaves ``owner.<name>`` unchanged, and a value that a dropdown does not
    offer shows as no choice there instead of raising. ``to_control`` / ``from_control``
    translate further (e.g. the class menu's ``"(all classes)"`` is the trait's ``""``).
    """
    options = getattr(control, "options", None)

    def forward(value: Any) -> Any:
        shown = to_control(value) if to_control is not None else value
        if options is not None and shown is not None and shown not in control.options:
            return None
        return shown

    def backward(value: Any) -> Any:
        return from_control(value) if from_control is not None else value

    return ControlLink((owner, name), (control, attr), transform=(forward, backward))


def replace_options(menu: traitlets.HasTraits, options: Sequence[Any], value: Any) -> None:
    """Give a selection control (``Dropdown``, ``ToggleButtons``) new ``options`` and choose ``value``.

    ipywidgets selects the first option whenever the options change; a trait linked to the
    control would take that value in between. Clearing the choice first (``index = None``, which
    :func:`link_control` ignores) makes the change go from the old choice straight to ``value``
    (``None``: no choice). The browser receives one message.
    """
    options = tuple(options)
    if value is not None and value not in options:
        raise ValueError(f"{value!r} is not one of the new options {list(options)}")
    with menu.hold_sync():
        if menu.index is not None:
            menu.index = None
        menu.options = options
        if value is not None:
            menu.value = value


def select_samples(view: traitlets.HasTraits, samples: Samples | None, origin: str = "") -> None:
    """Set a view's ``samples`` and ``samples_origin`` together (as :meth:`Selection.select_samples`
    does): empty samples are None, and None has no origin."""
    chosen = samples if samples is not None and len(samples) else None
    with view.hold_trait_notifications():
        view.samples_origin = origin if chosen is not None else ""
        view.samples = chosen


def check_samples(samples: Samples | None, ws: Any) -> Samples | None:
    """A ``samples`` trait's validation: None for no samples; every set and row must exist in ``ws``."""
    if samples is None or len(samples) == 0:
        return None
    for set_name, rows in samples.by_set().items():
        if set_name not in ws.sets:
            raise TraitValueError(f"samples of set {set_name!r}, which is not in the workspace; sets: {ws.sets}")
        if rows.size and int(rows.max()) >= ws.size(set_name):
            raise TraitValueError(
                f"samples row {int(rows.max())} of set {set_name!r}, which has {ws.size(set_name)} samples"
            )
    return samples


class SelectionLink:
    """Link traits of a view to traits of a :class:`~workbench.widgets.selection.Selection`, both ways.

    Like :func:`traitlets.link` for each pair, but a batch stays a batch: whatever changes on one
    side is copied to the other inside ``hold_trait_notifications``, all traits at once, so the
    other side's observers see every new value when the first of them runs.

    Args:
        selection: the shared selection.
        view: the view (any ``HasTraits``).
        names: the view's trait names, or ``{view trait: selection trait}``.
        resolve: per view trait, what the selection's value means for this view (e.g. ``""`` ->
            the first generated set); the view's value goes back to the selection unchanged, and
            only when it differs from what the selection already implies.
    """

    def __init__(
        self,
        selection: traitlets.HasTraits,
        view: traitlets.HasTraits,
        names: Iterable[str] | Mapping[str, str],
        *,
        resolve: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.selection = selection
        self.view = view
        self.names: dict[str, str] = dict(names) if isinstance(names, Mapping) else {n: n for n in names}
        self.resolve = dict(resolve or {})
        for mine, theirs in self.names.items():
            if not view.has_trait(mine):
                raise TypeError(f"{type(view).__name__} has no trait {mine!r}")
            if not selection.has_trait(theirs):
                raise TypeError(f"{type(selection).__name__} has no trait {theirs!r}")
        self.updating = False
        self._pull()
        selection.observe(self._on_selection, names=list(self.names.values()))
        view.observe(self._on_view, names=list(self.names))

    def implied(self, name: str) -> Any:
        """The value of the view's trait ``name`` that the selection implies now."""
        value = getattr(self.selection, self.names[name])
        fn = self.resolve.get(name)
        return fn(value) if fn is not None else value

    def differences(self) -> list[str]:
        """The view's traits whose value is not what the selection implies."""
        return [n for n in self.names if not same(getattr(self.view, n), self.implied(n))]

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        self.updating = True
        try:
            yield
        finally:
            self.updating = False

    def _pull(self) -> None:
        """selection -> view, in one batch."""
        with self._busy():
            with self.view.hold_trait_notifications():
                for name in self.differences():
                    setattr(self.view, name, self.implied(name))

    def _push(self) -> None:
        """view -> selection, in one batch (only what the selection does not imply already)."""
        with self._busy():
            with self.selection.hold_trait_notifications():
                for name in self.differences():
                    setattr(self.selection, self.names[name], getattr(self.view, name))

    def _on_selection(self, change: Any) -> None:
        if self.updating:
            return
        self._pull()
        if self.differences():  # the view's observers changed a linked trait meanwhile
            self._push()

    def _on_view(self, change: Any) -> None:
        if self.updating:
            return
        self._push()
        if self.differences():  # the selection's observers changed it further meanwhile
            self._pull()

    def unlink(self) -> None:
        """Stop copying in both directions."""
        self.selection.unobserve(self._on_selection, names=list(self.names.values()))
        self.view.unobserve(self._on_view, names=list(self.names))
