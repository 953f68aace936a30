"""Benchmark of the sandbox: media.list and eSearch latency per 500-entry page, downloads.

    python bench/sandbox_bench.py [--entries 200000] [--seed 1] [--download-mb 1024]

The sandbox runs as a child process (``python -m sandbox up``), as a user would run it, so the
client's work and the server's do not share one interpreter. Latencies are measured through the
real KalturaClient (what karchive uses), media.list first and eSearch (``searchEntry``) beside it
on the same catalogue: the selections the Princeton tool makes, a createdAt window walk, a full
sort, and free-text name searches; downloads with a raw HTTP GET of one Range to /dev/null,
first uncapped, then with the emulator's 10 MB/s per-connection cap with 1 and with 8 streams.
Target: under 0.5 s per 500-entry page on a 200,000-entry catalogue, for both listings (the
rows marked "first" measure one-time costs: the cold index, a text field's first analysis).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from KalturaClient import KalturaClient
from KalturaClient.Plugins.Core import (
    KalturaFilterPager,
    KalturaFlavorAssetFilter,
    KalturaMediaEntryFilter,
    KalturaMediaEntryOrderBy,
    KalturaPager,
)
from KalturaClient.Plugins.ElasticSearch import (
    KalturaESearchEntryItem,
    KalturaESearchEntryOperator,
    KalturaESearchEntryOrderByItem,
    KalturaESearchEntryParams,
    KalturaESearchOrderBy,
    KalturaESearchRange,
)

from sandbox.runner import admin_client, read_export

ROOT = Path(__file__).resolve().parents[1]

PAGE = 500
TARGET_SECONDS = 0.5
CAP = 10_000_000  # bytes/s per connection


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--download-mb",
        type=int,
        default=1024,
        help="MB read by the uncapped single stream (default 1024)",
    )
    parser.add_argument(
        "--capped-mb",
        type=int,
        default=40,
        help="MB read per stream under the 10 MB/s cap (default 40)",
    )
    args = parser.parse_args()

    command = [
        sys.executable,
        "-m",
        "sandbox",
        "up",
        "--entries",
        str(args.entries),
        "--seed",
        str(args.seed),
    ]
    started = time.perf_counter()
    # The child's stderr goes to a file, shown only if it fails before it is ready.
    with tempfile.TemporaryFile(mode="w+") as errors:
        child = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            env = _read_env(child, errors)
            ready = time.perf_counter() - started
            server_rss = psutil.Process(child.pid).memory_info().rss
            client = admin_client(env)
            rows = _list_latencies(client) + _esearch_latencies(client)
            flavor_url, flavor_size = _large_flavor(client)
            downloads = _downloads(env, flavor_url, flavor_size, args.download_mb, args.capped_mb)
        finally:
            child.terminate()
            child.wait(timeout=60)

    print(f"karchive sandbox benchmark: {args.entries:,} entries, seed {args.seed}")
    print(f"command: python bench/sandbox_bench.py --entries {args.entries} --seed {args.seed}")
    print(
        f"sandbox up (generate + load + both servers): {ready:.1f} s; "
        f"server RSS {server_rss / 2**20:,.0f} MiB; machine: {os.cpu_count()} CPUs"
    )
    print()
    print(
        f"{'Kaltura call (real KalturaClient, 500 per page)':<58}{'n':>4}"
        f"{'median':>9}{'p95':>9}{'max':>9}"
    )
    worst = 0.0
    for label, samples in rows:
        p95 = _percentile(samples, 0.95)
        if label.startswith(("media.list", "searchEntry")) and "first" not in label:
            worst = max(worst, p95)
        print(
            f"{label:<58}{len(samples):>4}{statistics.median(samples):>8.3f}s"
            f"{p95:>8.3f}s{max(samples):>8.3f}s"
        )
    print()
    print(f"{'download of one flavor (HTTP GET with Range, to /dev/null)':<58}{'MB':>6}{'MB/s':>9}")
    for label, megabytes, rate in downloads:
        print(f"{label:<58}{megabytes:>6.0f}{rate:>9.1f}")
    verdict = "met" if worst < TARGET_SECONDS else "MISSED"
    print()
    print(
        f"target: media.list and searchEntry p95 per page < {TARGET_SECONDS} s: {verdict} "
        f"(worst p95 {worst:.3f} s)"
    )
    return 0


def _read_env(child: subprocess.Popen[str], errors: Any) -> dict[str, str]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    env: dict[str, str] = {}
    while "KARCHIVE_BUCKET" not in env:
        line = lines.get(timeout=600)
        if line is None:
            errors.seek(0)
            raise SystemExit(f"the sandbox exited before it was ready: {errors.read()}")
        exported = read_export(line)
        if exported is not None:
            env[exported[0]] = exported[1]
    return env


def _timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call(*args, **kwargs)
    return time.perf_counter() - started, result


def _list_latencies(client: KalturaClient) -> list[tuple[str, list[float]]]:
    pager = KalturaFilterPager(pageSize=PAGE)

    def media_list(**fields: Any) -> Any:
        entry_filter = KalturaMediaEntryFilter()
        for name, value in fields.items():
            setattr(entry_filter, name, value)
        return client.media.list(entry_filter, pager)

    # The server builds its createdAt index lazily on the first listing after the bulk load:
    # a one-time cost, reported on its own row rather than mixed into the page latencies.
    cold = [_timed(media_list)[0]]
    first: list[float] = []
    for index in range(1, 11):
        pager.pageIndex = index
        first.append(_timed(media_list)[0])

    # The createdAt cursor karchive walks with past the 10,000 cap: order by +createdAt and move
    # createdAtGreaterThanOrEqual to the last createdAt seen. 20 cursors spread over the
    # catalogue's time span, and from the middle one 10 pages walked as karchive walks them.
    pager.pageIndex = 1
    ascending = KalturaMediaEntryOrderBy.CREATED_AT_ASC
    oldest = media_list(orderBy=ascending).objects[0].createdAt
    newest = media_list(orderBy=KalturaMediaEntryOrderBy.CREATED_AT_DESC).objects[0].createdAt
    cursor_times: list[float] = []
    for step in range(20):
        cursor = oldest + (newest - oldest) * step // 20
        cursor_times.append(
            _timed(media_list, orderBy=ascending, createdAtGreaterThanOrEqual=cursor)[0]
        )
    cursor = oldest + (newest - oldest) // 2
    for _ in range(10):
        elapsed, listed = _timed(media_list, orderBy=ascending, createdAtGreaterThanOrEqual=cursor)
        cursor_times.append(elapsed)
        if not listed.objects:
            break
        cursor = listed.objects[-1].createdAt

    near_cap: list[float] = []
    for index in range(15, 21):  # offsets 7,000-9,500: the deepest the cap allows
        pager.pageIndex = index
        near_cap.append(_timed(media_list, orderBy=KalturaMediaEntryOrderBy.CREATED_AT_ASC)[0])

    pager.pageIndex = 1
    flavor_times: list[float] = []
    for index in range(1, 11):
        pager.pageIndex = index
        ids = ",".join(e.id for e in media_list().objects)
        flavor_filter = KalturaFlavorAssetFilter()
        flavor_filter.entryIdIn = ids
        flavor_times.append(
            _timed(client.flavorAsset.list, flavor_filter, KalturaFilterPager(pageSize=PAGE))[0]
        )
    return [
        ("media.list, first call after start (cold indexes)", cold),
        ("media.list, first pages (pageIndex 1-10, default order)", first),
        ("media.list, createdAt cursor pages across the catalogue", cursor_times),
        ("media.list, offset pages next to the 10,000 cap", near_cap),
        ("flavorAsset.list, entryIdIn of 500 entries", flavor_times),
    ]


def _item(field: str, kind: int, term: str | None = None, **bounds: int) -> Any:
    item = KalturaESearchEntryItem()
    item.fieldName, item.itemType = field, kind
    if term is not None:
        item.searchTerm = term
    if bounds:
        item.range = KalturaESearchRange(**bounds)
    return item


def _operator(kind: int, *items: Any) -> Any:
    operator = KalturaESearchEntryOperator()
    operator.operator, operator.searchItems = kind, list(items)
    return operator


def _esearch_latencies(client: KalturaClient) -> list[tuple[str, list[float]]]:
    """eSearch pages of 500 beside media.list's: 1 EXACT, 2 PARTIAL, 4 EXISTS, 5 RANGE."""

    def search(operator: Any, index: int, order: tuple[str, str] | None = None,
               statuses: str | None = None) -> Any:
        params = KalturaESearchEntryParams()
        params.searchOperator = operator
        if statuses:
            params.objectStatuses = statuses
        if order:
            order_by = KalturaESearchOrderBy()
            order_by.orderItems = [KalturaESearchEntryOrderByItem(sortField=order[0],
                                                                  sortOrder=order[1])]
            params.orderBy = order_by
        pager = KalturaPager(pageSize=PAGE, pageIndex=index)
        return client.elasticSearch.eSearch.searchEntry(params, pager)

    now = int(time.time())
    year = 365 * 86400
    # The Princeton tool's "replace" selection: video, archived, not yet replaced (PARTIAL tags).
    princeton = _operator(1, _item("media_type", 1, "1"), _item("tags", 2, "archived_to_s3"),
                          _operator(3, _item("tags", 2, "flavors_deleted")))
    statuses = "-1,-2,0,1,2,7,4"
    first = [_timed(search, princeton, 1, None, statuses)[0]]
    selection = [_timed(search, princeton, i, None, statuses)[0] for i in range(2, 11)]
    # Unplayed for three years and not archived, walked to the 10,000 window's last pages.
    unplayed = _operator(1, _item("last_played_at", 5, lessThanOrEqual=now - 3 * year),
                         _operator(3, _item("tags", 1, "archived_to_s3")))
    deep = [_timed(search, unplayed, i)[0] for i in range(11, 21)]
    # createdAt windows across twelve years, in createdAt order, as a cursor walks them.
    windows = [_timed(search, _operator(1, _item("created_at", 5,
                                                 greaterThanOrEqual=now - (12 - k) * year,
                                                 lessThan=now - (11 - k) * year)),
                      1, ("created_at", "asc"))[0] for k in range(12)]
    # Every READY entry sorted by lastPlayedAt (never played last): a sort of the whole index.
    everything = _operator(1, _item("created_at", 5))
    by_play = [_timed(search, everything, i, ("last_played_at", "desc"))[0] for i in (1, 5, 10)]
    # Free text on names: the first term analyses the field once, later terms reuse that.
    text_first = [_timed(search, _operator(1, _item("name", 2, "quantum")), 1)[0]]
    text = [_timed(search, _operator(1, _item("name", 2, term)), 1)[0]
            for term in ("optics", "review panel", "cafe", "symmetry 12", "markets")]
    return [
        ("searchEntry, Princeton selection, first call", first),
        ("searchEntry, Princeton selection, pages 2-10", selection),
        ("searchEntry, unplayed 3 y and not archived, pages 11-20", deep),
        ("searchEntry, createdAt year windows, +created_at", windows),
        ("searchEntry, all entries by -last_played_at", by_play),
        ("searchEntry, name PARTIAL, first text query", text_first),
        ("searchEntry, name PARTIAL, further terms", text),
    ]


def _large_flavor(client: KalturaClient) -> tuple[str, int]:
    pager = KalturaFilterPager(pageSize=PAGE)
    best: Any = None
    for index in range(1, 21):
        pager.pageIndex = index
        entries = client.media.list(KalturaMediaEntryFilter(), pager).objects
        flavor_filter = KalturaFlavorAssetFilter()
        flavor_filter.entryIdIn = ",".join(e.id for e in entries)
        for flavor in client.flavorAsset.list(flavor_filter, pager).objects:
            if best is None or flavor.sizeInBytes > best.sizeInBytes:
                best = flavor
        if best is not None and best.sizeInBytes >= 2 * 2**30:
            break
    return client.flavorAsset.getUrl(best.id), int(best.sizeInBytes)


def _downloads(
    env: dict[str, str], url: str, size: int, uncapped_mb: int, capped_mb: int
) -> list[tuple[str, float, float]]:
    admin = env["KALTURA_SERVICE_URL"] + "/admin/partner"
    results = []
    single = min(size, uncapped_mb * 10**6)
    results.append(("1 stream, no cap", single / 1e6, _streams(url, 1, single)))
    _post(admin, {"download_rate_limit": CAP})
    try:
        each = min(size // 8, capped_mb * 10**6)
        results.append(("1 stream, 10 MB/s cap per connection", each / 1e6, _streams(url, 1, each)))
        results.append(
            (
                "8 streams, 10 MB/s cap per connection (aggregate)",
                8 * each / 1e6,
                _streams(url, 8, each),
            )
        )
    finally:
        _post(admin, {"download_rate_limit": None})
    return results


def _streams(url: str, count: int, length: int) -> float:
    """Aggregate MB/s of ``count`` parallel GETs, each reading its own ``length``-byte range."""
    errors: list[BaseException] = []

    def read(index: int) -> None:
        try:
            _read_range(url, index * length, length)
        except BaseException as exc:  # reported below: a benchmark must not hide a failure
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return count * length / elapsed / 1e6


def _read_range(url: str, offset: int, length: int) -> None:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        conn.request("GET", parts.path, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
        response = conn.getresponse()
        if response.status != 206:
            raise RuntimeError(f"download answered {response.status}, expected 206")
        received = 0
        with open(os.devnull, "wb") as sink:
            while chunk := response.read(1 << 20):
                sink.write(chunk)
                received += len(chunk)
        if received != length:
            raise RuntimeError(f"short download: {received} of {length} bytes")
    finally:
        conn.close()


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


if __name__ == "__main__":
    sys.exit(main())
