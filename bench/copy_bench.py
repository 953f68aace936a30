"""Copy benchmark: Kaltura -> S3 through the archive reconciler, against raw baselines.

    .venv/bin/python bench/copy_bench.py [--big-mib 2048] [--small 50] [--small-mib 40]
        [--streams 8,16,32] [--video-mib 64] [--per-worker 2] [--repeat 1] [--only-streams]

The emulator runs in a child process (``--serve``) and moto in another (``moto_server``), so
the peak RSS measured is karchive's own (moto keeps objects in memory) and source and sink do
not share one interpreter lock. The child inserts 1 big and many small videos with
SeededContent (bytes generated on the fly) and prints its variables. Then, in this process:

1. baselines in the same run: a raw download of the big video to nowhere (urllib3), and a raw
   boto3 upload (managed transfer, 8 threads) of as many in-memory bytes to moto, deleted again;
2. the archive reconciler copies the big video (peak RSS sampled every 20 ms by psutil);
3. the small videos through the reconciler on 8 workers;
4. with a 10 MB/s per-connection cap on the emulator, for each N of ``--streams``: N workers
   (``limits.concurrency: N``) copy ``--per-worker`` videos of ``--video-mib`` each, N at a
   time as in a daemon's cycle, against the physical limit of that moment: min(N x cap, the
   raw boto3 upload of as many such objects on N threads, measured just before); a plain
   download of N of them at once shows N x cap is there to take. Beside the rate: the peak RSS
   of this process during the copies and the bound the policy implies (``limits.copy_memory``
   shared by the copies, ``parallel_parts``), and the CPU seconds per GB each process spent,
   for the copies (karchive, emulator, moto) and for the raw upload (uploader, moto): when the
   machine's cores are the limit, the copy can reach at most raw CPU / copy CPU of the raw
   rate ("ceil"). ``--repeat`` runs every N again (the spread on a shared machine); each
   round's objects are deleted after it, as moto slows down as it fills. The adapters (and
   their connections) are built once and kept across rounds, as the daemon keeps them.

Targets: copy >= 80 % of the slower baseline; peak RSS <= 300 MiB during the big copy; N
concurrent capped copies >= 90 % of min(N x cap, raw upload) for N = 8, 16, 32, with their
peak RSS within the policy's bound.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MiB = 1 << 20
CAP = 10_000_000  # bytes/s per connection


# -- the child: sandbox with inserted videos ----------------------------------------------------


def serve(args: argparse.Namespace) -> None:
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

    big = insert(args.big_mib * MiB, 1)
    smalls = [insert(args.small_mib * MiB, 100 + i) for i in range(args.small)]
    rounds = [[insert(args.video_mib * MiB, 10_000 + 1000 * r + i)
               for i in range(n * args.per_worker)] for r, n in enumerate(_rounds(args))]
    print(json.dumps({"env": box.env(), "big": big, "small": smalls, "rounds": rounds}),
          flush=True)
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


def _policy(env: dict[str, str], concurrency: int, parallel_parts: int = 4) -> Any:
    """The bench's policy: ``concurrency`` copies at once, the default ``copy_memory`` (512 MiB)
    or, past 16 copies, the least that holds 2 parts of 16 MiB for each."""
    from policies.loader import parse_policy

    memory = max(512, concurrency * 2 * 16)

    return parse_policy(f"""
version: 1
kaltura: {{service_url: "{env['KALTURA_SERVICE_URL']}", partner_id: {env['KALTURA_PARTNER_ID']},
          admin_secret: "{env['KALTURA_ADMIN_SECRET']}", user_id: bench}}
storage: {{bucket: {env['KARCHIVE_BUCKET']}, storage_class: STANDARD,
          endpoint_url: "{env['AWS_ENDPOINT_URL']}"}}
limits: {{concurrency: {concurrency}, parallel_parts: {parallel_parts},
          copy_memory: {memory}MiB}}
""", "bench-policy.yaml")


def _copy_all(ctx: Any, ids: list[str], workers: int) -> tuple[float, int]:
    from reconcilers.archive import Archive

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda entry_id: Archive().run(entry_id, ctx), ids))
    return time.perf_counter() - started, sum(o.bytes for o in outcomes)


def raw_upload(endpoint: str, bucket: str, size: int, count: int, threads: int) -> None:
    """The upload baseline: boto3's managed transfer of ``count`` objects of ``size`` bytes on
    ``threads`` threads (16 MiB parts), bytes from memory; prints the aggregate MB/s and the
    CPU seconds it spent, and deletes the objects again (moto slows down as it fills)."""
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from s3transfer.manager import TransferManager

    raw = boto3.client("s3", endpoint_url=endpoint,
                       config=Config(max_pool_connections=max(32, 2 * threads)))
    block = os.urandom(64 * MiB)
    config = TransferConfig(multipart_chunksize=16 * MiB, max_concurrency=threads)
    keys = [f"bench/raw-upload-{i}" for i in range(count)]
    started = time.perf_counter()
    with TransferManager(raw, config) as manager:
        futures = [manager.upload(Repeating(block, size), bucket, key) for key in keys]
        for future in futures:
            future.result()
    rate = count * size / (time.perf_counter() - started) / 1e6
    times = os.times()
    for key in keys:
        raw.delete_object(Bucket=bucket, Key=key)
    print(f"{rate:.3f} {times.user + times.system:.3f}")


def _raw_upload_rate(env: dict[str, str], size: int, count: int, threads: int
                     ) -> tuple[float, float]:
    """(MB/s, CPU seconds the uploader spent), in a child process: its buffers would otherwise
    stay in this process's RSS."""
    rate, cpu = subprocess.run(
        [sys.executable, __file__, "--raw-upload", env["AWS_ENDPOINT_URL"],
         env["KARCHIVE_BUCKET"], str(size), str(count), str(threads)],
        check=True, capture_output=True, text=True).stdout.split()
    return float(rate), float(cpu)


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


@dataclass(slots=True)
class Bench:
    """What every section measures against: the sandbox's variables, its video ids, moto, and
    one set of adapters kept across rounds (as the daemon keeps its clients across cycles and
    policy reloads: ``Adapters.serving``)."""

    env: dict[str, str]
    info: dict[str, Any]
    moto: int  # pid
    emulator: int  # pid
    adapters: Any = None

    def context(self, concurrency: int, parallel_parts: int = 4) -> tuple[Any, Any]:
        """(policy, reconciler context) with these ``limits``."""
        from controller.adapters.storage.s3 import make_s3_client
        from controller.compose import compose
        from controller.runtime.journal import Journal

        policy = _policy(self.env, concurrency, parallel_parts)
        if self.adapters is None:
            self.adapters = compose(policy, s3_client=make_s3_client(policy.storage))
        journal = Journal(Path(os.environ.get("TMPDIR", "/tmp")) / "copy-bench-journal.jsonl")
        return policy, self.adapters.serving(policy).context(journal)


def measure(args: argparse.Namespace) -> None:
    # moto in a process of its own: sharing one interpreter (one GIL) with the emulator would
    # make the source and the sink slow each other down in a way real Kaltura and S3 do not.
    port = _free_port()
    moto = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H",
                             "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--big-mib", str(args.big_mib),
         "--small", str(args.small), "--small-mib", str(args.small_mib),
         "--streams", args.streams, "--video-mib", str(args.video_mib),
         "--repeat", str(args.repeat), "--per-worker", str(args.per_worker)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        env = dict(info["env"], AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
        _wait_for(env["AWS_ENDPOINT_URL"])
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        bench = Bench(env, info, moto.pid, child.pid)
        policy, _ = bench.context(8)
        from controller.adapters.storage.s3 import make_s3_client

        make_s3_client(policy.storage).create_bucket(Bucket=env["KARCHIVE_BUCKET"])
        print(f"\ncommand: {' '.join([sys.executable, *sys.argv])}\n", flush=True)
        if not args.only_streams:
            single(bench, args)
        streams(bench, args)
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(timeout=60)
        moto.terminate()
        moto.wait(timeout=30)


def single(bench: Bench, args: argparse.Namespace) -> None:
    """Sections 1-3: one big copy and many small ones against the uncapped baselines."""
    import urllib3

    from reconcilers.archive import Archive

    # One copy alone: 8 parts at once, as the raw upload's 8 threads.
    _, ctx = bench.context(1, parallel_parts=8)
    rows: list[tuple[str, float, str]] = []
    big_bytes = args.big_mib * MiB
    # 1. Baselines, same run (before the copy: moto slows down as it fills).
    big_id = bench.info["big"]
    url = ctx.kaltura.flavor_url(ctx.kaltura.entry(big_id).original.flavor_id)
    started = time.perf_counter()
    response = urllib3.PoolManager().request("GET", url, preload_content=False)
    got = sum(len(chunk) for chunk in response.stream(8 * MiB))
    download_rate = got / (time.perf_counter() - started) / 1e6
    rows.append(("baseline: raw download -> /dev/null", download_rate, "MB/s"))
    upload_rate, _ = _raw_upload_rate(bench.env, big_bytes, 1, 8)
    rows.append((f"baseline: raw boto3 upload of {args.big_mib} MiB from memory",
                 upload_rate, "MB/s"))
    # 2. The big copy, RSS sampled.
    with PeakRss() as rss:
        started = time.perf_counter()
        Archive().run(big_id, ctx)
        big_seconds = time.perf_counter() - started
    copy_rate = big_bytes / big_seconds / 1e6
    rows.append((f"archive reconciler, 1 x {args.big_mib} MiB", copy_rate, "MB/s"))
    slower = min(download_rate, upload_rate)
    # 3. Many small videos, 8 workers.
    _, ctx = bench.context(8)
    seconds, moved = _copy_all(ctx, bench.info["small"], 8)
    small_rate = moved / seconds / 1e6
    rows.append((f"archive reconciler, {args.small} x {args.small_mib} MiB, 8 workers",
                 small_rate, "MB/s"))
    for name, value, unit in rows:
        print(f"  {name:<58} {value:>9.1f} {unit}")
    print(f"  {'peak RSS during the big copy':<58} {rss.peak / MiB:>9.1f} MiB"
          f"   (target <= 300)")
    print(f"  {'big copy / slower baseline':<58} {copy_rate / slower:>9.0%}"
          f"   (target >= 80 %)")
    print(f"  {'small copies / slower baseline':<58} {small_rate / slower:>9.0%}\n",
          flush=True)


def streams(bench: Bench, args: argparse.Namespace) -> None:
    """Section 4: N capped copies at once against min(N x cap, raw upload of the moment)."""
    import psutil

    _admin(bench.env["KALTURA_SERVICE_URL"], "/admin/partner", {"download_rate_limit": CAP})
    processes = {"karchive": psutil.Process(), "emulator": psutil.Process(bench.emulator),
                 "moto": psutil.Process(bench.moto)}
    base = processes["karchive"].memory_info().rss
    print(f"  capped {CAP / 1e6:.0f} MB/s per connection, {args.video_mib} MiB videos; "
          "CPU s/GB: copy karchive+emulator+moto, raw uploader+moto; CPU-bound ceiling "
          "= raw CPU / copy CPU")
    print(f"  {'N':>3} {'copy':>6} {'raw up':>6} {'N*cap':>5} {'raw dn':>6} {'ratio':>5}"
          f" {'peak RSS':>8} {'bound':>8} {'copy CPU':>14} {'raw CPU':>9} {'ceil':>5}"
          f" {'cores':>5} {'load':>4}")
    for n, ids in zip(_rounds(args), bench.info["rounds"], strict=True):
        print(_round(bench, processes, n, ids, args.video_mib * MiB, base), flush=True)


def _round(bench: Bench, processes: dict[str, Any], n: int, ids: list[str], size: int,
           base: int) -> str:
    """One round: the raw baselines, then the N copies; its line of the table."""
    policy, ctx = bench.context(n)
    moto_before = sum(processes["moto"].cpu_times()[:2])
    raw, raw_cpu = _raw_upload_rate(bench.env, size, len(ids), n)
    raw_cpu += sum(processes["moto"].cpu_times()[:2]) - moto_before
    down = _raw_downloads(ctx, ids[:n])
    cpu = {name: sum(p.cpu_times()[:2]) for name, p in processes.items()}
    with PeakRss() as rss:
        seconds, moved = _copy_all(ctx, ids, policy.limits.concurrency)
    spent = [sum(p.cpu_times()[:2]) - cpu[name] for name, p in processes.items()]
    _delete_copies(ctx, ids)
    rate = moved / seconds / 1e6
    limit = min(n * CAP / 1e6, raw)
    gb = moved / 1e9
    copy_cpu = "+".join(f"{s / gb:.1f}" for s in spent)
    bound = _bound(policy, size, base)
    over = "" if rss.peak <= bound else "  OVER THE BOUND"
    return (f"  {n:>3} {rate:>6.1f} {raw:>6.1f} {n * CAP / 1e6:>5.0f} {down:>6.1f}"
            f" {rate / limit:>5.0%} {rss.peak / MiB:>4.0f} MiB {bound / MiB:>4.0f} MiB"
            f" {copy_cpu:>14} {raw_cpu / (len(ids) * size / 1e9):>9.1f}"
            f" {raw_cpu / (len(ids) * size / 1e9) / (sum(spent) / gb):>5.0%}"
            f" {sum(spent) / seconds:>5.2f} {os.getloadavg()[0]:>4.1f}{over}")


def _bound(policy: Any, size: int, base: int) -> int:
    """The part buffers the policy lets its copies of ``size`` bytes hold at once, plus
    ``base``: this process as it stood before its first copy (interpreter, libraries)."""
    from controller.adapters.storage.writer import part_size_for, parts_in_flight

    limits = policy.limits
    part = part_size_for(size, limits.part_size)
    held = (parts_in_flight(part, limits.parallel_parts, limits.part_memory) + 1) * part
    return base + limits.concurrency * held


def _rounds(args: argparse.Namespace) -> list[int]:
    """The N of every round, in order: ``--streams`` once per ``--repeat``."""
    ns = [int(n) for n in args.streams.split(",") if n.strip()]
    return ns * args.repeat


def _delete_copies(ctx: Any, ids: list[str]) -> None:
    """Everything the round wrote (moto slows down as it fills)."""
    for entry_id in ids:
        for key in list(ctx.archive.list_keys(f"{ctx.settings.prefix}{entry_id}/")):
            ctx.archive.delete(key)


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
    parser.add_argument("--raw-upload", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--big-mib", type=int, default=2048)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--small-mib", type=int, default=40)
    parser.add_argument("--streams", default="8,16,32", help="N of the capped rounds")
    parser.add_argument("--video-mib", type=int, default=64, help="video size, capped rounds")
    parser.add_argument("--per-worker", type=int, default=2,
                        help="videos queued per worker in a capped round")
    parser.add_argument("--repeat", type=int, default=1, help="run every N this many times")
    parser.add_argument("--only-streams", action="store_true", help="skip sections 1-3")
    args = parser.parse_args()
    if args.raw_upload:
        endpoint, bucket, size, count, threads = args.raw_upload
        raw_upload(endpoint, bucket, int(size), int(count), int(threads))
    elif args.serve:
        serve(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
