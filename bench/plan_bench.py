"""What observation costs: Kaltura calls, S3 calls, wall time and peak RSS for 10k-1M entries.

Rows: ``karchive`` is the pipeline as ``plan`` runs it; ``walk+index`` the daemon's full cycle,
which also writes the entry index (``controller/runtime/index.py``); ``refresh`` the daemon's
next cycle after 0.1 % of the entries were edited: what changed read from Kaltura, the plan made
from the index (target: <= 10 Kaltura calls at 1M).

    .venv/bin/python bench/plan_bench.py [--sizes 10000,200000,1000000] [--no-naive]

For each size the sandbox (emulator + moto) runs in this process and the observer — the
pipeline as ``plan`` and ``run`` use it: observe, classify, diff — in a child process, so the
child's peak RSS (its own ``VmHWM``: see ``peak_rss``) is the observer's alone. Kaltura calls
are HTTP requests counted by the emulator (``GET /admin/stats``: media.list pages,
multirequests, the session start); S3 calls are counted by the observer's own S3 seam. The
baseline is the observer the tool we replace amounts to: the same entry walk, then one
flavorAsset.list and one HEAD per entry, on the smallest catalogue. Targets: <= 0.005 Kaltura
and <= 0.002 S3 calls per entry; peak RSS flat in the catalogue's size (<= 300 MiB at 1M).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POLICY = """\
version: 1
kaltura:
  service_url: ${KALTURA_SERVICE_URL}
  partner_id: ${KALTURA_PARTNER_ID}
  admin_secret: ${KALTURA_ADMIN_SECRET}
  user_id: ${KALTURA_USER_ID}
storage:
  bucket: ${KARCHIVE_BUCKET}
  prefix: karchive/
  endpoint_url: ${AWS_ENDPOINT_URL}
  region: ${AWS_DEFAULT_REGION}
placeholder: placeholder.mp4
restore_on_play: true
rules:
  - name: keep-recent
    match: {played_within: 1y}
    state: unmanaged
  - name: old-videos
    match: {unplayed_for: 3y, media_types: [video], min_size: 10MB}
    state: placeholder
  - name: backup-everything-else
    match: {created_before: 90d, statuses: [ready]}
    state: archived
"""


# -- the child: observe once and report -----------------------------------------------------


def child(policy_path: str, naive: bool, index_state: str | None = None) -> None:
    from controller.compose import compose
    from controller.runtime.index import Informer
    from controller.runtime.metrics import CallCounter
    from controller.runtime.pipeline import Pipeline
    from policies.loader import load_policy

    policy = load_policy(policy_path)
    counter = CallCounter()
    started = time.monotonic()
    adapters = compose(policy, metrics=counter)
    if naive:
        store = adapters.store
        entries = naive_observe(adapters.kaltura, getattr(store, "client", None), policy,
                                counter)
        items = -1
        heads = entries
    elif index_state is not None:
        # The daemon's cycle: a full walk that writes the entry index, or a refresh of it.
        planned = Informer(Path(index_state)).observe(adapters).planned
        entries = planned.observation.entries
        items = len(planned.plan.items)
        heads = planned.observation.heads
    else:
        planned = Pipeline(adapters).run()  # observe → classify → diff, as plan and run do
        entries = planned.observation.entries
        items = len(planned.plan.items)
        heads = planned.observation.heads
    seconds = time.monotonic() - started
    peak = peak_rss()
    print(json.dumps({"entries": entries, "plan_items": items, "seconds": seconds,
                      "peak_rss": peak, "s3_calls": counter.s3_total, "heads": heads,
                      "kaltura_calls_seen": counter.kaltura_total}))


def peak_rss() -> int:
    """This process's own peak RSS in bytes: ``VmHWM``, the high-water mark of its address space.

    Not ``ru_maxrss``: Linux carries that over ``execve`` from the forked copy of the parent
    (``setmax_mm_hiwater_rss`` at exec), so a child of the parent that holds the sandbox reports
    the sandbox's size — every earlier figure of this bench measured the emulator, not the
    observer. ``ru_maxrss`` stays the fallback where ``/proc`` is missing.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def naive_observe(session: Any, s3: Any, policy: Any, counter: Any) -> int:
    """One flavorAsset.list and one HEAD per entry, as the Princeton tool's loop does."""
    from KalturaClient.Plugins.Core import KalturaFlavorAssetFilter

    from controller.adapters.kaltura.read import FLAVOR_FIELDS, fields_of, iter_entries, to_flavor
    from controller.adapters.storage.s3 import s3_call
    from controller.errors import NotFound

    count = 0
    bucket = policy.storage.bucket
    for entry in iter_entries(session):
        flt = KalturaFlavorAssetFilter()
        flt.entryIdEqual = entry.entry_id
        flavors = session.call("flavorasset.list", lambda c, f=flt: c.flavorAsset.list(f))
        [to_flavor(fields_of(a, FLAVOR_FIELDS)) for a in flavors.objects or []]
        with contextlib.suppress(NotFound):
            s3_call(counter, "HeadObject",
                    partial(s3.head_object, Bucket=bucket, Key=entry.entry_id),
                    bucket=bucket, key=entry.entry_id)
        count += 1
    return count


# -- the parent: one sandbox per size -------------------------------------------------------


def _stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/admin/stats") as response:
        return dict(json.loads(response.read())["calls"])


CHANGED = 0.001  # the share of entries edited between the daemon's two cycles
DELETED = 3  # KalturaEntryStatus: media.update refuses a deleted entry


def _run_child(sb: Any, size: int, args: list[str]) -> dict[str, Any]:
    assert sb.kaltura is not None
    env = {**os.environ, **sb.env()}
    before = _stats(sb.kaltura.url)
    done = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"observer failed for {size}: {done.stderr.strip()[-2000:]}")
    after = _stats(sb.kaltura.url)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    # The emulator counts each sub-call of a multirequest too; HTTP requests are the rest.
    # karchive sends flavorAsset.list and system.getTime only inside multirequests; the naive
    # observer sends no multirequest at all.
    multi = delta.get("multirequest", 0)
    sub_calls = sum(n for k, n in delta.items()
                    if k in ("flavorasset.list", "system.gettime")) if multi else 0
    result["kaltura_calls"] = sum(delta.values()) - sub_calls
    result["kaltura_by_action"] = {k: n for k, n in delta.items() if n}
    return result


def _edit(sb: Any, share: float) -> int:
    """Edit ``share`` of the entries as an editor's media.update would (the emulator's own
    update, in process): a new tag, a new updatedAt."""
    backend = sb.backend
    with backend.lock:
        live = sorted(i for i, e in backend.entries.items() if e.status != DELETED)
        ids = live[:: max(1, round(1 / share))]
    for entry_id in ids:
        backend.update_media(entry_id, {"tags": "edited, lecture"})
    return len(ids)


def measure(size: int, naive: bool, workdir: Path) -> list[dict[str, Any]]:
    """The plain observer (or the naive one); then, for karchive, the daemon's two cycles: the
    full walk that writes the entry index, and after CHANGED of the entries were edited, the
    refresh and plan from the index."""
    from sandbox.runner import Sandbox

    started = time.monotonic()
    with Sandbox(entries=size, seed=11) as sb:
        setup = time.monotonic() - started
        policy = workdir / "policy.yaml"
        policy.write_text(POLICY, encoding="utf-8")
        runs = [("naive" if naive else "karchive", ["--naive"] if naive else [])]
        if not naive:
            state = str(workdir / f"state-{size}")
            runs += [("walk+index", ["--index-state", state]),
                     ("refresh", ["--index-state", state])]
        rows = []
        for kind, extra in runs:
            edited = _edit(sb, CHANGED) if kind == "refresh" else 0
            row = _run_child(sb, size, ["--child", str(policy), *extra])
            row.update(kind=kind, size=size, naive=naive, edited=edited,
                       sandbox_setup_seconds=setup)
            rows.append(row)
            print(f"  measured {kind} {size:,}: {row['seconds']:.1f}s", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,200000,1000000")
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--child", metavar="POLICY", help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index-state", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.naive, args.index_state)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(size, False) for size in sizes]
        if not args.no_naive:
            runs.insert(1 if sizes else 0, (min(sizes or [10000]), True))
        for size, naive in runs:
            rows += measure(size, naive, Path(tmp))
    print(f"command: {sys.executable} bench/plan_bench.py --sizes {args.sizes}"
          + (" --no-naive" if args.no_naive else ""))
    print()
    header = (f"{'observer':<12}{'entries':>9}{'kaltura':>9}{'s3':>8}{'(HEAD)':>8}"
              f"{'k/entry':>10}{'s3/entry':>10}{'list/entry':>11}{'items':>9}{'wall s':>9}"
              f"{'peak RSS':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        n = max(r["entries"], 1)
        listing = r["s3_calls"] - r["heads"]
        print(f"{r['kind']:<12}{r['entries']:>9,}"
              f"{r['kaltura_calls']:>9,}{r['s3_calls']:>8,}{r['heads']:>8,}"
              f"{r['kaltura_calls'] / n:>10.4f}{r['s3_calls'] / n:>10.4f}{listing / n:>11.5f}"
              f"{max(r['plan_items'], 0):>9,}{r['seconds']:>9.1f}{r['peak_rss'] / 2**20:>8.0f} MiB")
    naive_rows = [r for r in rows if r["naive"]]
    if naive_rows:
        base = naive_rows[0]
        same = next((r for r in rows if r["kind"] == "karchive" and r["size"] == base["size"]),
                    None)
        if same is not None:
            print()
            print(f"vs naive at {base['size']:,}: "
                  f"{base['kaltura_calls'] / max(same['kaltura_calls'], 1):.0f}x fewer Kaltura "
                  f"calls, {base['s3_calls'] / max(same['s3_calls'], 1):.0f}x fewer S3 calls, "
                  f"{base['seconds'] / max(same['seconds'], 1e-9):.1f}x faster")
    print()
    plain = [r for r in rows if r["kind"] == "karchive"]
    if len(plain) > 1:
        low, high = plain[0], plain[-1]
        print(f"peak RSS at {high['entries']:,} entries vs {low['entries']:,}: "
              f"{high['peak_rss'] / max(low['peak_rss'], 1):.2f}x for "
              f"{high['entries'] / max(low['entries'], 1):.0f}x the entries")
    for r in rows:
        if r["kind"] == "refresh":
            walk = next(w for w in rows if w["kind"] == "walk+index" and w["size"] == r["size"])
            print(f"refresh at {r['size']:,} after {r['edited']:,} edits ({CHANGED:.1%}): "
                  f"{r['kaltura_calls']} Kaltura calls against the full walk's "
                  f"{walk['kaltura_calls']:,} "
                  f"({walk['kaltura_calls'] / max(r['kaltura_calls'], 1):.0f}x fewer), "
                  f"{r['seconds']:.1f}s against {walk['seconds']:.1f}s; by action: "
                  f"{r['kaltura_by_action']}")
    print("targets: <= 0.005 Kaltura calls/entry, <= 0.002 S3 calls/entry, peak RSS flat "
          "(<= 300 MiB at 1M)")
    print("HEAD: none with storage.restore_status: listing (AWS and the sandbox list it);"
          " 'head' adds one per cold copy whose restore status decides a transition.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
