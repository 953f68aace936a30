"""Copy benchmark: Kaltura -> S3 through the archive reconciler, against raw baselines.

    .venv/bin/python bench/copy_bench.py [--big-mib 2048] [--small 50] [--small-mib 40]

The emulator runs in a child process (``--serve``) and moto in another (``moto_server``), so
the peak RSS measured is karchive's own (moto keeps objects in memory) and source and sink do
not share one interpreter lock. The child inserts 1 big and N small videos with
SeededContent (bytes generated on the fly) and prints its variables. Then, in this process:

1. baselines in the same run: a raw download of the big video to nowhere (urllib3), and a raw
   boto3 upload (managed transfer, 8 threads) of as many in-memory bytes to moto, deleted again;
2. the archive reconciler copies the big video (peak RSS sampled every 20 ms by psutil);
3. the N small videos through the reconciler on 8 workers;
4. with a 10 MB/s per-connection cap on the emulator: one video alone vs 8 at once.

Targets (issue 4): copy >= 80 % of the slower baseline; peak RSS <= 300 MiB during the big copy;
capped 8-way >= 6x single stream.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MiB = 1 << 20
CAP = 10_000_000  # bytes/s per connection


# -- the child: sandbox with inserted videos ----------------------------------------------------


def serve(big_mib: int, small: int, small_mib: int) -> None:
    from sandbox.kaltura.content import SeededContent
    from sandbox.kaltura.records import FlavorAsset, MediaEntry
    from sandbox.runner import Sandbox

    box = Sandbox(entries=1, seed=3, conversion_delay=0.2).start()
    backend = box.backend
    now = int(time.time())

    def insert(size: int, seed: int) -> str:
        entry = MediaEntry(id=backend.new_id(), partner_id=backend.partner.id,
                           name=f"bench {seed}", created_at=now - 86400, updated_at=now - 86400)
        flavor = FlavorAsset(id=backend.new_id(), entry_id=entry.id, partner_id=entry.partner_id,
                             content=SeededContent(seed, size), size=-(-size // 1024),
                             size_in_bytes=size, is_original=True, flavor_params_id=0,
                             tags="source", created_at=now, updated_at=now)
        backend.insert(entry, flavors=[flavor])
        return entry.id

    big = insert(big_mib * MiB, 1)
    smalls = [insert(small_mib * MiB, 100 + i) for i in range(small + 9)]
    print(json.dumps({"env": box.env(), "big": big, "small": smalls}), flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
    box.stop(save=False)


# -- the parent: measurements ---------------------------------------------------------------------


class Repeating(io.RawIOBase):
    """``total`` bytes from memory: one random block repeated (a 2 GiB buffer would cost this
    process 2 GiB and say nothing more about the upload path)."""

    def __init__(self, block: bytes, total: int) -> None:
        self.block, self.total, self.position = block, total, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self.total - self.position if size < 0 else min(size, self.total - self.position)
        pieces, wanted = [], size
        while wanted:
            start = self.position % len(self.block)
            piece = self.block[start:start + wanted]
            pieces.append(piece)
            wanted -= len(piece)
            self.position += len(piece)
        return b"".join(pieces)


class PeakRss:
    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _admin(base: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()


def _policy(env: dict[str, str], concurrency: int) -> Any:
    from policies.loader import parse_policy

    return parse_policy(f"""
version: 1
kaltura: {{service_url: "{env['KALTURA_SERVICE_URL']}", partner_id: {env['KALTURA_PARTNER_ID']},
          admin_secret: "{env['KALTURA_ADMIN_SECRET']}", user_id: bench}}
storage: {{bucket: {env['KARCHIVE_BUCKET']}, storage_class: STANDARD,
          endpoint_url: "{env['AWS_ENDPOINT_URL']}"}}
limits: {{concurrency: {concurrency}}}
""", "bench-policy.yaml")


def _copy_all(ctx: Any, ids: list[str], workers: int) -> tuple[float, int]:
    from reconcilers.archive import Archive

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda entry_id: Archive().run(entry_id, ctx), ids))
    return time.perf_counter() - started, sum(o.bytes for o in outcomes)


def raw_upload(endpoint: str, bucket: str, size: int) -> None:
    """The upload baseline: boto3's managed transfer, 8 threads, bytes from memory; prints
    MB/s and deletes the object again (moto slows down as it fills)."""
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    raw = boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=32))
    started = time.perf_counter()
    raw.upload_fileobj(Repeating(os.urandom(64 * MiB), size), bucket, "bench/raw-upload",
                       Config=TransferConfig(multipart_chunksize=16 * MiB, max_concurrency=8))
    rate = size / (time.perf_counter() - started) / 1e6
    raw.delete_object(Bucket=bucket, Key="bench/raw-upload")
    print(f"{rate:.3f}")


def _raw_downloads(ctx: Any, ids: list[str]) -> float:
    """Aggregate MB/s of plain downloads of ``ids``' originals, all at once."""
    import urllib3

    urls = [ctx.kaltura.flavor_url(ctx.kaltura.entry(i).original.flavor_id) for i in ids]
    pool = urllib3.PoolManager(maxsize=len(urls))

    def fetch(url: str) -> int:
        response = pool.request("GET", url, preload_content=False)
        return sum(len(chunk) for chunk in response.stream(MiB))

    started = time.perf_counter()
    with ThreadPoolExecutor(len(urls)) as workers:
        total = sum(workers.map(fetch, urls))
    return total / (time.perf_counter() - started) / 1e6


def measure(args: argparse.Namespace) -> None:
    import urllib3

    from controller.adapters.storage.s3 import make_s3_client
    from controller.compose import compose
    from controller.runtime.journal import Journal

    # moto in a process of its own: sharing one interpreter (one GIL) with the emulator would
    # make the source and the sink slow each other down in a way real Kaltura and S3 do not.
    port = _free_port()
    moto = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H",
                             "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--big-mib", str(args.big_mib),
         "--small", str(args.small), "--small-mib", str(args.small_mib)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        env = dict(info["env"], AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
        _wait_for(env["AWS_ENDPOINT_URL"])
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        policy = _policy(env, 8)
        s3 = make_s3_client(policy.storage)
        s3.create_bucket(Bucket=env["KARCHIVE_BUCKET"])
        journal = Journal(Path(os.environ.get("TMPDIR", "/tmp")) / "copy-bench-journal.jsonl")
        ctx = compose(policy, s3_client=s3).context(journal, parallel_parts=8)
        rows: list[tuple[str, float, str]] = []
        big_bytes = args.big_mib * MiB

        # 1. Baselines, same run (before the copy: moto slows down as it fills).
        big_id = info["big"]
        url = ctx.kaltura.flavor_url(ctx.kaltura.entry(big_id).original.flavor_id)
        started = time.perf_counter()
        response = urllib3.PoolManager().request("GET", url, preload_content=False)
        got = sum(len(chunk) for chunk in response.stream(8 * MiB))
        download_rate = got / (time.perf_counter() - started) / 1e6
        rows.append(("baseline: raw download -> /dev/null", download_rate, "MB/s"))
        # In a child process: its buffers would otherwise stay in this process's RSS.
        upload_rate = float(subprocess.run(
            [sys.executable, __file__, "--raw-upload", env["AWS_ENDPOINT_URL"],
             env["KARCHIVE_BUCKET"], str(big_bytes)],
            check=True, capture_output=True, text=True).stdout.strip())
        rows.append((f"baseline: raw boto3 upload of {args.big_mib} MiB from memory",
                     upload_rate, "MB/s"))
        # 2. The big copy, RSS sampled.
        with PeakRss() as rss:
            from reconcilers.archive import Archive

            started = time.perf_counter()
            Archive().run(info["big"], ctx)
            big_seconds = time.perf_counter() - started
        copy_rate = big_bytes / big_seconds / 1e6
        rows.append((f"archive reconciler, 1 x {args.big_mib} MiB", copy_rate, "MB/s"))

        slower = min(download_rate, upload_rate)

        # 3. Many small videos, 8 workers.
        smalls = info["small"][: args.small]
        seconds, moved = _copy_all(ctx, smalls, 8)
        small_rate = moved / seconds / 1e6
        rows.append((f"archive reconciler, {args.small} x {args.small_mib} MiB, 8 workers",
                     small_rate, "MB/s"))

        # 4. Per-connection cap: one stream vs eight.
        _admin(env["KALTURA_SERVICE_URL"], "/admin/partner", {"download_rate_limit": CAP})
        spare = info["small"][args.small:]
        raw_eight = _raw_downloads(ctx, spare[1:9])
        seconds, moved = _copy_all(ctx, spare[:1], 1)
        single = moved / seconds / 1e6
        seconds, moved = _copy_all(ctx, spare[1:9], 8)
        eight = moved / seconds / 1e6
        rows.append(("capped 10 MB/s per connection: 1 stream", single, "MB/s"))
        rows.append(("capped 10 MB/s per connection: 8 at once", eight, "MB/s"))
        rows.append(("baseline: capped raw download, 8 at once -> /dev/null", raw_eight, "MB/s"))

        print(f"\ncommand: {' '.join([sys.executable, *sys.argv])}\n")
        for name, value, unit in rows:
            print(f"  {name:<58} {value:>9.1f} {unit}")
        print()
        print(f"  {'peak RSS during the big copy':<58} {rss.peak / MiB:>9.1f} MiB"
              f"   (target <= 300)")
        print(f"  {'big copy / slower baseline':<58} {copy_rate / slower:>9.0%}"
              f"   (target >= 80 %)")
        print(f"  {'small copies / slower baseline':<58} {small_rate / slower:>9.0%}")
        print(f"  {'capped: 8-way / single stream':<58} {eight / single:>9.1f}x"
              f"   (target >= 6x)")
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=60)
        moto.terminate()
        moto.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw-upload", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--big-mib", type=int, default=2048)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--small-mib", type=int, default=40)
    args = parser.parse_args()
    if args.raw_upload:
        raw_upload(args.raw_upload[0], args.raw_upload[1], int(args.raw_upload[2]))
    elif args.serve:
        serve(args.big_mib, args.small, args.small_mib)
    else:
        measure(args)


if __name__ == "__main__":
    main()
