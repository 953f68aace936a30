"""The state directory's SQLite store: opened by several daemons at once, migrated once."""

from __future__ import annotations

import threading
from pathlib import Path

from controller.runtime.state import MIGRATIONS, StateStore


def test_daemons_opening_one_new_state_directory_at_once_all_get_it_migrated(
        tmp_path: Path) -> None:
    # Two daemons on one state directory (a standby beside the holder) start together: each
    # must find the tables, none may create them a second time.
    start = threading.Barrier(8)
    opened: list[StateStore] = []
    failed: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            opened.append(StateStore.open(tmp_path))
        except BaseException as exc:  # noqa: BLE001 — the test reports what any opener met
            failed.append(exc)

    for _ in range(5):  # a few rounds on fresh files: the race needs the openers to overlap
        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failed == []
        assert {store.version for store in opened} == {len(MIGRATIONS)}
        for store in opened:
            store.close()
        opened.clear()
        for leftover in tmp_path.iterdir():
            leftover.unlink()
