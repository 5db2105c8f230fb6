"""Cached serving profiles and frontiers are read-only: a caller cannot corrupt later runs."""

from __future__ import annotations

import numpy as np
import pytest

from fleet.frontier import build_serving_frontier, build_serving_profile


def test_cached_profile_arrays_are_read_only_and_a_second_build_is_unaffected():
    p = build_serving_profile("llama-3.1-8b", "H100-SXM", 1)
    before = p.dec_t0.copy()
    for name in ("dec_t0", "dec_t1", "dec_e0", "dec_e1"):
        arr = getattr(p, name)
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[1] = 0.0
        with pytest.raises(ValueError):
            arr *= 2.0
    with pytest.raises(Exception):          # frozen dataclass
        p.dec_t0 = np.zeros_like(before)    # type: ignore[misc]
    with pytest.raises(TypeError):
        p.meta["x"] = 1                     # type: ignore[index]
    q = build_serving_profile("llama-3.1-8b", "H100-SXM", 1)
    assert q is p                           # the cache hands back the same object, intact
    assert np.array_equal(q.dec_t0, before)


def test_profile_does_not_freeze_the_callers_arrays():
    import dataclasses

    p = build_serving_profile("llama-3.1-8b", "H100-SXM", 1)
    mine = np.array(p.dec_t0)               # a writeable copy of the caller's own
    q = dataclasses.replace(p, dec_t0=mine)
    mine[1] = 123.0                         # the caller's array stays theirs ...
    assert q.dec_t0[1] != 123.0             # ... and the profile kept its own copy
    assert not q.dec_t0.flags.writeable


def test_cached_frontier_arrays_are_read_only():
    f = build_serving_frontier("llama-3.1-8b", "H100-SXM", 1, n_caps=3)
    for name in ("caps_w", "t0", "t1", "e0", "e1", "pre_t", "pre_e"):
        with pytest.raises(ValueError):
            getattr(f, name)[0] = 0.0
