"""No traceback for any input: malformed policies and bad command lines, generated from a seed.

Each malformed policy is a valid one with one or two mutations drawn by a seeded RNG (a value
replaced by junk of another type or out of range, a control character, deep nesting, a YAML
tag, an unknown or doubled key, a broken line). Loading must either accept it — and then the
planner must run on it — or refuse it with a one-line ``PolicyError``; anything else is a
traceback in front of a user and fails the test. The command lines run in subprocesses, as a
user would, and their stderr is searched for a traceback.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from policies.loader import PolicyError, parse_policy
from policies.observed import ArchiveFacts, FlavorFacts, ObservedEntry, RestoreStatus
from policies.plan import diff

SEED = 20261201
POLICIES = 360
NOW = 1_780_000_000

_VIDEO = FlavorFacts("0_flav0001", 0, True, 2, 300_000_000, "mp4", NOW - 10**8)
ENTRIES = (
    ObservedEntry("0_entry001", "Lecture", "jdoe", "jdoe", 2, 1, NOW - 2 * 10**8, NOW - 10**8,
                  NOW - 10**8, 3, 3600, flavors=(_VIDEO,)),
    ObservedEntry("0_entry002", "Old", "jdoe", "jdoe", 2, 1, NOW - 3 * 10**8, NOW - 10**8,
                  None, 0, 3600, tags=frozenset({"archived_to_s3", "flavors_deleted"}),
                  flavors=(FlavorFacts("0_plac0001", 0, True, 2, 300000, "mp4", NOW),),
                  archive=ArchiveFacts("0_entry002", 300_000_000, "GLACIER",
                                       RestoreStatus.FROZEN, "legacy")),
)

BASE = """\
version: 1
kaltura:
  service_url: http://127.0.0.1:9
  partner_id: 100
  admin_secret: s3cret-value
  timeout: 60
  session_expiry: 86400
  rate_limits:
    media.delete: 35/10s
storage:
  bucket: karchive-sandbox
  prefix: karchive/
  layout: entry-folder
  storage_class: GLACIER
  restore:
    tier: Bulk
    days: 7
placeholder: placeholder.mp4
legacy_placeholder_size: 300000
restore_on_play: true
rules:
  - name: old
    match:
      unplayed_for: 3y
      min_size: 10MB
      plays_below: 5
      statuses: [ready]
    state: placeholder
  - name: rest
    match:
      created_before: 90d
    state: archived
limits:
  transitions_per_cycle: 100
  bytes_per_cycle: 2TiB
  concurrency: 4
  max_replace_share: 0.5
schedule:
  interval: 1h
  jitter: 5min
"""

JUNK = [
    "true", "false", "null", "~", "1e308", "-1e308", ".inf", "-.inf", ".nan", "-1", "0",
    "99999999999999999999999999", "99999999999999999999y", "1e400TB", "[]", "{}", "[1, [2, [3]]]",
    "'\x07bell'", '"\\x00nul"', "!!python/object:os.system ls", "!!binary aGVsbG8=",
    "!custom 1", "2024-01-01", "2024-01-01T00:00:00Z", "&a 1", "*nowhere", "'${NOPE}'",
    "${", "'${BAD NAME}'", "3yr", "18m", "0.5.5", "-3y", "5MiBs", "1/0s", "0/1s", "yes", "no",
    "on", "off", "0x1F", "0o17", "1_000", "'   '", "''", "\u202e", "\ufeffkey", "|\n  block",
    ">-\n  folded", "'" + "a" * 5000 + "'",
]


def _scalar_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if ":" in line and not line.rstrip().endswith(":")]


def _mutate(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    kind = rng.randrange(9)
    index = rng.choice(_scalar_lines(lines))
    key, _, _ = lines[index].partition(":")
    if kind <= 3:  # a value replaced by junk
        lines[index] = f"{key}: {rng.choice(JUNK)}"
    elif kind == 4:  # a control character somewhere
        at = rng.randrange(len(lines))
        lines[at] = lines[at] + chr(rng.choice([0, 1, 7, 8, 11, 12, 27, 127]))
    elif kind == 5:  # nesting far deeper than any policy
        depth = rng.choice([200, 1000, 5000])
        lines[index] = f"{key}: " + "[" * depth + "]" * depth
    elif kind == 6:  # an unknown key, or the same key twice
        indent = key[: len(key) - len(key.lstrip())]
        extra = rng.choice([f"{indent}unknwn: 1", lines[index]])
        lines.insert(index + 1, extra)
    elif kind == 7:  # a broken line: bad indentation, a tab, an unclosed quote
        lines[index] = rng.choice(["\t" + lines[index], " " + lines[index],
                                   lines[index] + " 'unclosed", lines[index] + ": : :"])
    else:  # a whole section of the wrong shape
        lines[index] = f"{key}: [{rng.choice(JUNK)}]"
    return "\n".join(lines) + "\n"


def _policies() -> list[str]:
    rng = random.Random(SEED)
    found = []
    for _ in range(POLICIES):
        text = BASE
        for _ in range(rng.choice([1, 1, 2])):
            text = _mutate(rng, text)
        found.append(text)
    return found


def test_malformed_policies_get_one_line_errors_and_never_a_traceback(tmp_path: Path) -> None:
    tracebacks: list[tuple[str, str]] = []
    refused = accepted = 0
    texts = _policies()
    assert len(set(texts)) >= 300
    for text in texts:
        try:
            policy = parse_policy(text, "policy.yaml", base_dir=tmp_path, environ={})
        except PolicyError as exc:
            refused += 1
            message = str(exc)
            assert "\n" not in message and message.startswith("policy.yaml"), message
            assert "s3cret-value" not in message
            continue
        except Exception as exc:  # noqa: BLE001 - exactly what the test counts
            tracebacks.append((type(exc).__name__, text[:200]))
            continue
        accepted += 1
        # Whatever was accepted must plan without failing later (huge durations, sizes...).
        try:
            diff(ENTRIES, policy, NOW, 1_048_576)
        except Exception as exc:  # noqa: BLE001
            tracebacks.append((f"plan: {type(exc).__name__}", text[:200]))
    assert tracebacks == []
    assert refused >= 300 and accepted >= 5, (refused, accepted)


@pytest.mark.parametrize(
    ("value", "field"),
    [("partner_id: true", "kaltura.partner_id"), ("timeout: true", "kaltura.timeout"),
     ("timeout: 1e308", "kaltura.timeout"), ("days: true", "storage.restore.days"),
     ("concurrency: false", "limits.concurrency"), ("max_replace_share: true",
                                                    "limits.max_replace_share")],
)
def test_booleans_and_absurd_numbers_are_not_numbers(value: str, field: str) -> None:
    key = value.split(":")[0]
    lines = [f"{line.split(':')[0]}: {value.split(': ', 1)[1]}"
             if line.strip().startswith(f"{key}:") else line for line in BASE.splitlines()]
    with pytest.raises(PolicyError) as caught:
        parse_policy("\n".join(lines) + "\n", "policy.yaml", environ={})
    assert f": {field}: " in str(caught.value)


def _cli(args: list[str], tmp: Path, stdin: str = "devnull") -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path(__file__).parents[2])}
    command = [sys.executable, "-m", "controller.cli", *args]
    if stdin == "closed":
        command = ["sh", "-c", 'exec 0<&- "$@"', "sh", *command]
    return subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL if stdin == "devnull" else None, timeout=60)


def _bad_cli_inputs(tmp: Path) -> list[list[str]]:
    good = tmp / "good.yaml"
    good.write_text(BASE.replace("http://127.0.0.1:9", "http://127.0.0.1:9"), encoding="utf-8")
    (tmp / "latin1.json").write_bytes(b'{"format_version": 4, "items": ["caf\xe9"]}')
    (tmp / "garbage.json").write_text("{not json", encoding="utf-8")
    (tmp / "deep.json").write_text("[" * 200_000, encoding="utf-8")
    (tmp / "list.json").write_text("[]", encoding="utf-8")
    (tmp / "v1.json").write_text('{"format_version": 1, "items": []}', encoding="utf-8")
    (tmp / "other.json").write_text(json.dumps({
        "format_version": 4, "planned_at": 1, "observed_count": 1, "summary": "",
        "target": {"partner_id": 999, "location": "another-bucket", "prefix": "x/"},
        "items": []}), encoding="utf-8")
    (tmp / "binary.yaml").write_bytes(b"\xff\xfe\x00v\x00e\x00r")
    (tmp / "ctrl.yaml").write_text("version: 1\x07\n", encoding="utf-8")
    (tmp / "deep.yaml").write_text("a: " + "[" * 3000 + "]" * 3000 + "\n", encoding="utf-8")
    (tmp / "tag.yaml").write_text("version: !!python/object:os.system x\n", encoding="utf-8")
    (tmp / "env.yaml").write_text(BASE.replace("s3cret-value", "${NO_SUCH_SECRET}"),
                                  encoding="utf-8")
    inputs = [
        [], ["nonsense"], ["plan", "--no-such-flag"], ["plan", "-f"],
        ["plan", "-f", "missing.yaml"], ["plan", "-f", "binary.yaml"], ["plan", "-f", "ctrl.yaml"],
        ["plan", "-f", "deep.yaml"], ["plan", "-f", "tag.yaml"], ["plan", "-f", "env.yaml"],
        ["policy", "validate"], ["policy", "validate", "binary.yaml"],
        ["policy", "validate", "deep.yaml"], ["policy", "validate", "--env", "env.yaml"],
        ["policy", "validate", "/"], ["apply", "-f", "good.yaml", "latin1.json"],
        ["apply", "-f", "good.yaml", "garbage.json"], ["apply", "-f", "good.yaml", "deep.json"],
        ["apply", "-f", "good.yaml", "list.json"], ["apply", "-f", "good.yaml", "v1.json"],
        ["apply", "-f", "good.yaml", "other.json"], ["apply", "-f", "good.yaml", "missing.json"],
        ["apply", "-f", "good.yaml", "/"], ["apply", "--wait", "soon"],
        ["apply", "-f", "ctrl.yaml", "--auto-approve"], ["list", "--format", "xml"],
        ["list", "-f", "deep.yaml"], ["count", "-f", "tag.yaml"], ["health", "-f", "binary.yaml"],
        ["stats", "-f", "missing.yaml"], ["plan", "-f", "good.yaml", "--out", "/no/such/dir/p"],
        ["run", "-f", "tag.yaml"], ["export", "-f", "ctrl.yaml"],
    ]
    return inputs


def test_bad_command_lines_end_in_one_error_line_and_never_a_traceback(tmp_path: Path) -> None:
    inputs = _bad_cli_inputs(tmp_path)
    assert len(inputs) >= 30
    tracebacks = []
    for args in inputs:
        done = _cli(args, tmp_path)
        if "Traceback" in done.stderr or "Traceback" in done.stdout:
            tracebacks.append((args, done.stderr.strip().splitlines()[-1:]))
            continue
        assert done.returncode == 1, (args, done.returncode, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (args, done.stderr)  # one line, not a usage block
        assert "error" in lines[0].lower() and "s3cret-value" not in done.stderr, (args, lines)
    # The same with standard input closed altogether (not merely at its end).
    closed = _cli(["apply", "-f", "good.yaml", "garbage.json"], tmp_path, stdin="closed")
    assert "Traceback" not in closed.stderr and closed.returncode == 1
    assert tracebacks == []
