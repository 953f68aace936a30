"""What the restore check costs against what a full cycle's observation costs, by catalogue size.

    .venv/bin/python bench/watch_bench.py [--sizes 20000,100000]

For each size the sandbox (emulator + moto) runs in this process with the seeded catalogue (its
Princeton placeholders, most of them in GLACIER). The baseline, measured in the same run, is one
full observation through the pipeline: what every restore check cost while it re-ran the whole
cycle. Then a daemon (in process, its own state directory, a mark recorded at Kaltura's "now")
runs one check with nothing played, and one check after a viewer plays a placeholder: it lists
the played placeholders, plans them by id and requests the thaw. Kaltura calls are HTTP requests
as the daemon counts them (``karchive_kaltura_calls_total``: a multirequest is one), checked
against the emulator's own count (``GET /admin/stats``); S3 calls are the daemon's
``karchive_s3_calls_total`` (the archive's listing, the lease, the thaw request).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = 86_400
POLICY = """\
version: 1
kaltura:
  service_url: {KALTURA_SERVICE_URL}
  partner_id: {KALTURA_PARTNER_ID}
  admin_secret: {KALTURA_ADMIN_SECRET}
  user_id: {KALTURA_USER_ID}
storage:
  bucket: {KARCHIVE_BUCKET}
  prefix: karchive/
  endpoint_url: {AWS_ENDPOINT_URL}
  region: {AWS_DEFAULT_REGION}
legacy_placeholder_size: {legacy_size}
restore_on_play: true
"""


def _admin(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/admin/{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def _requests(metrics: Any, family: str) -> int:
    """HTTP requests a metrics family counted (a failed multirequest slot is no request)."""
    total = 0.0
    for metric in metrics.registry.collect():
        if metric.name != family.removesuffix("_total"):
            continue
        for sample in metric.samples:
            if sample.name == family and not sample.labels.get("outcome", "").startswith(
                    "multirequest_"):
                total += sample.value
    return int(total)


def _stats_requests(before: dict[str, int], after: dict[str, int], subcalls: int) -> int:
    """The emulator's count of HTTP requests: every call it counted, less the sub-calls of the
    multirequests (which it counts under their own names too)."""
    return sum(after.values()) - sum(before.values()) - subcalls


def _placeholder(sb: Any) -> str:
    from sandbox.catalogue import LegacyKind

    glacier = {o.key for o in sb.summary.objects if o.storage_class == "GLACIER"}
    with sb.backend.lock:
        for entry_id in sb.summary.legacy_ids(LegacyKind.PLACEHOLDER):
            entry = sb.backend.entries[entry_id]
            if entry_id in glacier and entry.status == 2 and entry.display_in_search >= 0 \
                    and entry.moderation_status not in (1, 3):
                return str(entry_id)
    raise SystemExit("the catalogue has no Princeton placeholder in GLACIER")


def measure(size: int, workdir: Path) -> dict[str, Any]:  # long: one scenario, read in order
    from controller.compose import compose
    from controller.runtime.daemon import Daemon, DaemonSettings
    from controller.runtime.metrics import CallCounter
    from controller.runtime.pipeline import Pipeline
    from controller.runtime.state import StateStore
    from controller.runtime.watch import OVERLAP
    from policies.loader import load_policy
    from sandbox.catalogue import PLACEHOLDER_CONTENT
    from sandbox.runner import Sandbox

    row: dict[str, Any] = {"size": size}
    with Sandbox(entries=size, seed=1, restore_delay=DAY) as sb:
        env = sb.env()
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        folder = workdir / str(size)
        folder.mkdir()
        policy_path = folder / "policy.yaml"
        policy_path.write_text(POLICY.format(**env, legacy_size=PLACEHOLDER_CONTENT.size))
        url = env["KALTURA_SERVICE_URL"]

        # The baseline: one whole observation and its plan (the old check's cost).
        counter = CallCounter()
        adapters = compose(load_policy(policy_path), metrics=counter)
        started = time.monotonic()
        observation = Pipeline(adapters).run().observation
        row["full"] = {"entries": observation.entries, "kaltura": counter.kaltura_total,
                       "s3": counter.s3_total, "seconds": time.monotonic() - started}
        adapters.close()

        # The check: no seeded play inside its window (two days on), a mark at Kaltura's now.
        sb.backend.clock.advance(2 * DAY)
        state = folder / "state"
        with StateStore.open(state) as store:
            store.watch_mark.set(int(_admin(url, "clock")["now"]))
        daemon = Daemon(DaemonSettings(policy_path, state_dir=state, lease_duration=600.0))
        try:
            daemon.restore_check()  # the session starts here, once per process
            for name, play in (("idle", None), ("played", _placeholder(sb))):
                if play is not None:
                    _admin(url, "play", {"entryId": play})
                k0 = _requests(daemon.metrics, "karchive_kaltura_calls_total")
                s0 = _requests(daemon.metrics, "karchive_s3_calls_total")
                stats0 = dict(_admin(url, "stats")["calls"])
                started = time.monotonic()
                daemon.restore_check()
                seconds = time.monotonic() - started
                stats1 = dict(_admin(url, "stats")["calls"])
                subcalls = sum(stats1.get(k, 0) - stats0.get(k, 0)
                               for k in ("system.gettime", "flavorasset.list"))
                if stats1.get("media.list", 0) - stats0.get("media.list", 0) > 0:
                    subcalls += 1  # the listing rides in the multirequest with system.getTime
                row[name] = {
                    "kaltura": _requests(daemon.metrics, "karchive_kaltura_calls_total") - k0,
                    "emulator": _stats_requests(stats0, stats1, subcalls),
                    "s3": _requests(daemon.metrics, "karchive_s3_calls_total") - s0,
                    "seconds": seconds,
                }
            row["thawed"] = daemon.metrics.value(
                "karchive_transitions_total", {"action": "thaw", "result": "done"}) or 0
        finally:
            daemon.close()
    row["overlap_hours"] = OVERLAP / 3600
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            rows.append(measure(size, Path(tmp)))
            print(f"  measured {size:,}", file=sys.stderr)
    print(f"command: {sys.executable} bench/watch_bench.py --sizes {args.sizes}")
    print()
    header = (f"{'entries':>9}  {'what':<28}{'kaltura':>9}{'(emulator)':>11}{'s3':>7}"
              f"{'wall s':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        full = r["full"]
        print(f"{r['size']:>9,}  {'full observation (baseline)':<28}{full['kaltura']:>9,}"
              f"{'':>11}{full['s3']:>7,}{full['seconds']:>9.2f}")
        for name, what in (("idle", "restore check, nothing new"),
                           ("played", "restore check, 1 played")):
            c = r[name]
            print(f"{'':>9}  {what:<28}{c['kaltura']:>9,}{c['emulator']:>11,}{c['s3']:>7,}"
                  f"{c['seconds']:>9.2f}")
        print(f"{'':>9}  Kaltura calls: {full['kaltura'] / max(r['played']['kaltura'], 1):,.0f}x"
              f" fewer than the baseline; thaws requested: {r['thawed']:.0f}")
    print()
    print("acceptance: <= 3 Kaltura calls for the check that requests a played placeholder's "
          "thaw at 20,000 entries")
    print("S3: the check lists the archive once when it has entries to plan (the pipeline's "
          "inventory), plus the lease and the thaw request.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
