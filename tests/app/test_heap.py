"""Start-up's objects are kept out of the collector's full walks (bot.app.freeze_start_up_heap)."""

from __future__ import annotations

import gc


def test_what_start_up_loaded_is_out_of_the_full_collections_walk() -> None:
    from bot.app import freeze_start_up_heap

    gc.collect()  # (earlier tests' garbage is not start-up's)
    before = len(gc.get_objects(generation=2))
    try:
        freeze_start_up_heap()
        assert gc.get_freeze_count() >= before * 0.9  # (nearly) everything alive at the end of start-up
        assert len(gc.get_objects(generation=2)) < before // 10  # a full collection walks almost nothing
    finally:
        gc.unfreeze()
