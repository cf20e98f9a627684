"""The roles an image set plays in a workspace, and the role a set's name suggests.

- ``reference``: the real images every metric compares to (exactly one set per workspace);
- ``train``: the generator's training images (memorization analyses; optional);
- ``test``: held-out real images never used in training (C_T, FLD; optional);
- ``generated``: the models' samples (one row of every metric table each);
- ``pool``: other sets (e.g. a resampling pool), listed but not compared.
"""

from __future__ import annotations

ROLES: tuple[str, ...] = ("reference", "train", "test", "generated", "pool")

_ROLE_NAMES = {
    "reference": ("reference", "real", "ref", "reals"),
    "train": ("train", "training", "trainset", "train-set"),
    "test": ("test", "heldout", "held-out", "holdout", "test-set"),
}


def guess_role(set_name: str) -> str:
    """The role a set name suggests (see :data:`ROLES`); ``generated`` when nothing matches."""
    key = set_name.strip().lower()
    for role, names in _ROLE_NAMES.items():
        if key in names:
            return role
    return "generated"


def check_role(role: str, where: str) -> str:
    """``role`` when it is one of :data:`ROLES`, else a ValueError naming ``where`` it came from."""
    if role not in ROLES:
        raise ValueError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
    return role
