"""The state directory's SQLite store: opened by several daemons at once, migrated once."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from controller.runtime.state import MIGRATIONS, StateStore


def _open_and_tell(path: str, start: object, results: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        store = StateStore.open(Path(path))
        results.put(("ok", store.version))  # type: ignore[attr-defined]
        store.close()
    except BaseException as exc:  # noqa: BLE001 — the test reports what any opener met
        results.put(("failed", str(exc)))  # type: ignore[attr-defined]


def test_daemons_opening_one_new_state_directory_at_once_all_get_it_migrated(
        tmp_path: Path) -> None:
    # Daemons on one state directory (a standby beside the holder) start together: each must
    # find the store migrated; none may create its tables a second time, nor give up on a lock
    # SQLite's busy timeout does not wait for (a new file switched to WAL).
    context = multiprocessing.get_context("spawn")
    for round_ in range(12):  # fresh files: the race needs the openers to overlap
        folder = tmp_path / f"state{round_}"
        start, results = context.Barrier(10), context.Queue()
        openers = [context.Process(target=_open_and_tell, args=(str(folder), start, results))
                   for _ in range(10)]
        for opener in openers:
            opener.start()
        answers = [results.get(timeout=60) for _ in openers]
        for opener in openers:
            opener.join(timeout=60)
        assert answers == [("ok", len(MIGRATIONS))] * len(openers)


def test_threads_opening_one_new_store_at_once_all_get_it_migrated(tmp_path: Path) -> None:
    start = threading.Barrier(8)
    versions: list[int] = []
    failed: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            store = StateStore.open(tmp_path)
            versions.append(store.version)
            store.close()
        except BaseException as exc:  # noqa: BLE001 — the test reports what any opener met
            failed.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert versions == [len(MIGRATIONS)] * 8
