"""The public surface is exactly ``ytingest.__all__``."""

import ytingest


def test_all_names_exist_and_nothing_public_is_missing() -> None:
    """Every name in __all__ is importable, and every public re-export is listed."""
    for name in ytingest.__all__:
        assert hasattr(ytingest, name), name
    public = {
        n
        for n, v in vars(ytingest).items()
        if not n.startswith("_") and getattr(v, "__module__", "").startswith("ytingest.")
    }
    assert public == set(ytingest.__all__)


def test_all_is_sorted_and_unique() -> None:
    """__all__ has no duplicates and reads in order."""
    assert list(ytingest.__all__) == sorted(set(ytingest.__all__))
