"""LDAP lookups per cycle: 20,000 entries owned by 2,000 people, against a real slapd on loopback.

Prints, for karchive's directory adapter, the LDAP searches and wall time of a cold cycle (empty
cache), a warm one (within cache_ttl) and one after the TTL; and, as the baseline, the searches and
wall time of the tool it replaces, which ran one search per row of the list (add_ldap_status.py).

    .venv/bin/python bench/ldap_bench.py [--entries 20000] [--owners 2000] [--batch-size 50]

Needs the Debian packages slapd and ldap-utils (the same server the tests start).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "directory")]

from ldap3 import NONE, SUBTREE, Connection, Server  # noqa: E402
from ldap3.utils.conv import escape_filter_chars  # noqa: E402
from ldap_people import BULK_STATES, FakeClock  # noqa: E402
from slapd import SUFFIX, Person, Slapd  # noqa: E402

from controller.adapters.ldap import Directory  # noqa: E402
from policies.directory import DirectorySettings  # noqa: E402


def people(count: int) -> list[Person]:
    return [
        Person(f"p{i:05d}", f"Person {i}", f"Person {i}", f"Dept {i % 40}", BULK_STATES[i % 3])
        for i in range(count)
    ]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def naive_cycle(settings: DirectorySettings, owners: list[str]) -> int:
    """The old script: for every row, one search with the active filter for that row's uid."""
    conn = Connection(Server(settings.url, get_info=NONE), auto_bind=True, read_only=True)
    searches = 0
    attrs = list(settings.name_attributes) + [settings.org_unit_attribute]
    for user_id in owners:
        uid = escape_filter_chars(settings.uid_for(user_id))
        conn.search(settings.base, settings.active_filter.replace("{uid}", uid), SUBTREE,
                    attributes=attrs)
        searches += 1
    conn.unbind()
    return searches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--owners", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--skip-naive", action="store_true", help="do not run the baseline")
    args = parser.parse_args()

    rng = random.Random(6)
    owners = [f"p{rng.randrange(args.owners):05d}@example.edu" for _ in range(args.entries)]
    # Every person owns at least one entry, as in the figure (2,000 distinct owners).
    owners[: args.owners] = [f"p{i:05d}@example.edu" for i in range(args.owners)]
    rng.shuffle(owners)
    distinct = len(set(owners))

    with Slapd(people(args.owners)) as server:
        settings = DirectorySettings(url=server.url, base=SUFFIX, batch_size=args.batch_size)
        clock = FakeClock()
        print(f"catalogue: {args.entries} entries, {distinct} distinct owners, "
              f"batch_size {settings.batch_size}, slapd {server.url}")
        with Directory(settings, clock=clock) as directory:
            rows = []
            for label, advance in (("cold cache", 0.0), ("warm cache", 60.0),
                                   ("after cache_ttl", settings.cache_ttl + 1)):
                clock.now += advance
                before = directory.searches
                wall = timed(lambda: directory.lookup(owners))
                rows.append((label, directory.searches - before, wall))
            answers = directory.lookup(owners)
        active = sum(1 for info in answers.values() if info.status.value == "active")
        print(f"{'cycle':<28}{'LDAP searches':>14}{'per entry':>11}{'wall s':>9}")
        for label, searches, wall in rows:
            print(f"{'karchive, ' + label:<28}{searches:>14}{searches / args.entries:>11.4f}"
                  f"{wall:>9.3f}")
        if not args.skip_naive:
            box: list[int] = []
            wall = timed(lambda: box.append(naive_cycle(settings, owners)))
            print(f"{'baseline: one per entry':<28}{box[0]:>14}{box[0] / args.entries:>11.4f}"
                  f"{wall:>9.3f}")
        print(f"distinct owners active: {active} of {len(answers)} "
              "(two searches per batch: who exists, then who of them is active)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
