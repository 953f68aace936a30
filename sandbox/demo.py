"""``make demo``: karchive's daemon at work on the local sandbox, watched through its metrics.

It starts the sandbox (the Kaltura emulator with a seeded catalogue and a local S3), writes the
variables karchive reads to ``.karchive/demo.env``, starts ``karchive run -f policy.yaml`` as a
child process with a short cycle, and prints one status line every few seconds, read from the
daemon's ``/metrics``: entries by observed state, what the plan still wants, and what was done.
Within a minute entries get archived and replaced by the placeholder; play one with
``karchive sandbox play ENTRY_ID`` from another shell and watch it thaw and come back.

Owner notices (unless ``--no-notices``): the demo runs the policy with a ``notices:`` section
added (:data:`NOTICES`, written with the policy to ``.karchive/demo-policy.yaml``) and the
daemon's keep listener on. The first cycle tells each owner of their entries (each message the
sandbox's SMTP sink accepts is printed, with its ``.eml`` file), archives them, and holds their
swaps for the 30-day grace period; once nothing else is left to do the demo moves the sandbox's
clock past it — as ``karchive sandbox clock 2678400`` does — and the next cycle swaps them.
Entries of owners the sandbox gives no address stay held, as they must.

The demo talks to the daemon only as a user would — its command line and its HTTP endpoints — so
the sandbox still imports nothing of karchive. Ctrl-C (or ``--duration``, or
``--until-converged``) stops the daemon with SIGTERM and then the sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sandbox.catalogue import ARCHIVED_TAG
from sandbox.runner import Sandbox, shell_exports

REPLACED_TAG = "flavors_deleted"
STATES = ("original", "archived", "placeholder", "restoring", "unhealthy")

# The notices section the demo adds to the policy: the sandbox's SMTP sink, the keep listener.
NOTICES = """
notices:
  before: 30d
  remind: [7d]
  sender: "Media Services <media@example.edu>"
  reply_to: media-help@example.edu
  smtp:
    host: ${{KARCHIVE_SMTP_HOST}}
    port: ${{KARCHIVE_SMTP_PORT}}
    security: none              # the sandbox's sink; a real server: starttls (the default)
  keep:
    base_url: http://127.0.0.1:{keep_port}/keep   # where owners reach `run --keep-address`
    secret_file: keep.secret    # 32+ random bytes; whoever holds it can mint keep links
"""
GRACE_OVER = 31 * 86400  # the demo's clock move: past the 30-day grace period

GUIDE = """\
karchive is running on the sandbox ({entries} entries, videos capped at {max_mib} MiB).
  metrics:  {metrics}/metrics   probes: {metrics}/healthz {metrics}/readyz
  daemon log: {log}
  mail sent (the sandbox's SMTP sink): {mail}
  In another shell:
    source {env_file}
    .venv/bin/karchive plan -f {policy}        what is still to do
    .venv/bin/karchive health -f {policy}      every entry's state and invariant
  Ctrl-C stops the daemon (SIGTERM) and the sandbox.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=150, help="catalogue size (default 150)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-mib", type=int, default=16,
                        help="cap each video at this many MiB so copies take seconds (default 16)")
    parser.add_argument("--policy", default="policy.yaml", help="the policy the daemon runs")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between cycles")
    parser.add_argument("--restore-delay", type=float, default=20.0,
                        help="seconds a Glacier restore takes in the local S3 (default 20)")
    parser.add_argument("--metrics-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--until-converged", action="store_true",
                        help="stop once a cycle has acted and nothing is pending any more")
    parser.add_argument("--no-notices", dest="notices", action="store_false",
                        help="run the policy as it is, without owner notices")
    args = parser.parse_args(argv)

    workdir = Path(".karchive")
    workdir.mkdir(exist_ok=True)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())

    with Sandbox(entries=args.entries, seed=args.seed, restore_delay=args.restore_delay,
                 conversion_delay=1.0, max_size=args.max_mib << 20,
                 mail_dir=workdir / "mail") as sandbox:
        env = sandbox.env()
        env_file = workdir / "demo.env"
        exports = shell_exports(env)
        env_file.write_text(exports)
        print(exports, end="")
        port = args.metrics_port or _free_port()
        metrics = f"http://127.0.0.1:{port}"
        log = workdir / "demo-daemon.log"
        keep_port = _free_port() if args.notices else None
        if keep_port is not None:
            args.policy = str(_with_notices(Path(args.policy), workdir, keep_port))
        daemon = _start_daemon(args, env, port, log, keep_port)
        print()
        print(GUIDE.format(entries=args.entries, max_mib=args.max_mib, metrics=metrics, log=log,
                           mail=workdir / "mail", env_file=env_file, policy=args.policy),
              flush=True)
        try:
            converged = _watch(args, sandbox, daemon, metrics, stopping)
        finally:
            code = _stop_daemon(daemon)
        print(f"daemon exited with {code}")
        if code != 0:
            print(f"the daemon failed: see {log}", file=sys.stderr)
            return 1
        if args.until_converged and not converged:
            print("the daemon did not converge in time", file=sys.stderr)
            return 1
    return 0


def _with_notices(policy: Path, workdir: Path, keep_port: int) -> Path:
    """The policy with the demo's notices section, beside a fresh keep secret."""
    (workdir / "keep.secret").write_text(secrets.token_hex(32) + "\n")
    text = policy.read_text(encoding="utf-8")
    if not any(line.startswith("notices:") for line in text.splitlines()):
        text = text.rstrip("\n") + "\n" + NOTICES.format(keep_port=keep_port)
    target = workdir / "demo-policy.yaml"
    target.write_text(text, encoding="utf-8")
    return target


def _start_daemon(args: argparse.Namespace, env: dict[str, str], port: int,
                  log: Path, keep_port: int | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "controller.cli", "run", "-f", args.policy,
               "--interval", str(args.interval), "--metrics-port", str(port),
               "--lease-duration", "30", "--grace-period", "20",
               "--state-dir", str(log.parent / "state")]
    if keep_port is not None:
        command += ["--keep-address", f"127.0.0.1:{keep_port}"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT)


def _stop_daemon(daemon: subprocess.Popen[bytes]) -> int:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            return daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
    return daemon.wait()


def _watch(args: argparse.Namespace, sandbox: Sandbox, daemon: subprocess.Popen[bytes],
           metrics: str, stopping: threading.Event) -> bool:
    """Print a status line every few seconds; True once the daemon acted and converged."""
    started = time.monotonic()
    hinted = False
    mail = _Mail(sandbox)
    moved = not args.notices  # without notices there is no grace period to move past
    while not stopping.wait(5.0):
        elapsed = time.monotonic() - started
        if daemon.poll() is not None:
            print("the daemon stopped on its own", file=sys.stderr)
            return False
        sample = _scrape(metrics)
        if sample is None:
            print(f"[{elapsed:5.0f}s] waiting for the daemon's first observation ...", flush=True)
            continue
        print(f"[{elapsed:5.0f}s] {_status(sample)}", flush=True)
        mail.show()
        if not hinted and (entry_id := _a_placeholder(sandbox)):
            hinted = True
            print(f"         try: source .karchive/demo.env && .venv/bin/karchive sandbox play "
                  f"{entry_id}   (a viewer plays a placeholder: it is thawed and restored)",
                  flush=True)
        done = sum(sample["transitions"].values())
        idle = done and not sum(sample["pending"].values())
        in_grace = sample["notices"].get("in_grace", 0)
        if idle and not moved and in_grace:
            _move_clock(sandbox, int(in_grace))
            moved = True
            continue
        if args.until_converged and idle and moved and not in_grace:
            return True
        if args.duration and elapsed >= args.duration:
            break
    return False


def _scrape(metrics: str) -> dict[str, dict[str, float]] | None:
    try:
        with urllib.request.urlopen(f"{metrics}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    sample: dict[str, dict[str, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "karchive_entries_observed":
                sample["observed"][s.labels["state"]] = s.value
            elif s.name == "karchive_pending_changes":
                sample["pending"][s.labels["action"]] = s.value
            elif s.name == "karchive_transitions_total" and s.labels.get("result") == "done":
                sample["transitions"][s.labels["action"]] = s.value
            elif s.name == "karchive_cycles_total":
                sample["cycles"][s.labels.get("result", "")] = s.value
            elif s.name == "karchive_entries_in_grace":
                sample["notices"]["in_grace"] = s.value
            elif s.name == "karchive_entries_awaiting_notice":
                sample["notices"]["awaiting"] = s.value
            elif s.name == "karchive_notices_sent_total":
                sample["notices"]["sent"] = s.value
    if not sample["observed"]:
        return None
    for key in ("pending", "transitions", "cycles", "notices"):
        sample.setdefault(key, {})
    return sample


def _status(sample: dict[str, dict[str, float]]) -> str:
    observed = " · ".join(f"{state} {int(sample['observed'].get(state, 0))}" for state in STATES)
    pending, done = _counts(sample["pending"]), _counts(sample["transitions"])
    line = f"{observed} | pending: {pending} | done: {done}"
    notices = sample["notices"]
    if notices:
        line += (f" | notices sent: {int(notices.get('sent', 0))}, held: "
                 f"{int(notices.get('in_grace', 0))} in grace, "
                 f"{int(notices.get('awaiting', 0))} awaiting a notice")
    return line


class _Mail:
    """Prints each message the sandbox's SMTP sink accepted since the last look."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.seen: set[Path] = set()

    def show(self) -> None:
        sink = self.sandbox.smtp
        if sink is None:
            return
        for path in sink.files():
            if path in self.seen:
                continue
            self.seen.add(path)
            message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
            print(f"         ✉ {path}: to {message['To']}: {str(message['Subject']).strip()}",
                  flush=True)


def _move_clock(sandbox: Sandbox, held: int) -> None:
    """Past the grace period, as ``karchive sandbox clock`` does (the admin endpoint)."""
    print(f"         {held} replaces wait out their owners' 30-day grace period and nothing "
          f"else is left to do: moving the sandbox's clock on, as `karchive sandbox clock "
          f"{GRACE_OVER}` does", flush=True)
    assert sandbox.kaltura is not None
    request = urllib.request.Request(f"{sandbox.kaltura.url}/admin/clock", method="POST",
                                     data=json.dumps({"advance": GRACE_OVER}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        print(f"         clock now {json.loads(response.read())['now']:.0f} (unix seconds)",
              flush=True)


def _counts(counts: dict[str, float]) -> str:
    return ", ".join(f"{int(n)} {name}" for name, n in sorted(counts.items()) if n) or "none"


def _a_placeholder(sandbox: Sandbox) -> str | None:
    """An entry karchive swapped for the placeholder (the catalogue's own legacy ones excluded)."""
    summary = sandbox.summary
    legacy = {i for ids in summary.legacy.values() for i in ids} if summary else set()
    assert sandbox.backend is not None
    with sandbox.backend.lock:
        for entry in sandbox.backend.all_entries():
            tags = {t.strip() for t in entry.tags.split(",")}
            if {ARCHIVED_TAG, REPLACED_TAG} <= tags and entry.id not in legacy:
                return str(entry.id)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
