"""The cost estimate of ``karchive stats``: what the archive costs a month, and what the plan adds.

Pure arithmetic over figures the observation already has: the archive's objects and bytes by
storage class (every object of karchive's layout in the bucket, from the listing: originals,
side assets, manifests, earlier copies), the plan's totals, the Kaltura bytes the policy frees,
and the policy's prices (``policies.schema.Costs``; defaults are AWS list prices with their
date). It decides nothing; ``docs/deploy.md`` walks through the same sums as a worksheet.

What is counted, per month:

- storage: bytes × the class's price per GB-month, plus, for GLACIER and DEEP_ARCHIVE, the
  40 KB S3 keeps per object (8 KB at the STANDARD price, 32 KB at the class's);
- after the plan: the same with the bytes the plan copies added in the policy's storage class.

And once, for the plan: the write requests of its copies (one per 16 MiB part, plus the
create and complete calls, at the class's request price) and the restores it asks for (its
thaws' bytes and requests at the policy's tier). Not counted: data transfer, the restored copies'
own storage while they stay readable, early-deletion charges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.schema import Costs, RestoreTier, StorageClass

GB = 1_000_000_000  # AWS prices per GB are decimal gigabytes
GLACIER_OVERHEAD = (8 * 1024, 32 * 1024)  # bytes per archived object: at STANDARD, at the class
_ARCHIVE_CLASSES = (StorageClass.GLACIER, StorageClass.DEEP_ARCHIVE)
PART = 16 * 2**20  # the archive writer's default part size


@dataclass(frozen=True, slots=True)
class Holding:
    """Objects and bytes the archive holds in one storage class."""

    objects: int = 0
    bytes: int = 0


def hold(holdings: dict[str, Holding], storage_class: str, size: int) -> None:
    """Count one object of ``size`` bytes in ``storage_class`` (the inventories call this)."""
    held = holdings.get(storage_class, Holding())
    holdings[storage_class] = Holding(held.objects + 1, held.bytes + size)


def _class(name: str) -> StorageClass | None:
    try:
        return StorageClass(name)
    except ValueError:
        return None  # a directory archive, or a class without a price


def storage_per_month(holdings: Mapping[str, Holding], costs: Costs) -> dict[str, float]:
    """Monthly storage cost per storage class (only classes that have a price)."""
    prices = costs.storage_per_gb_month
    standard = prices.get(StorageClass.STANDARD, 0.0)
    found: dict[str, float] = {}
    for name, holding in holdings.items():
        storage_class = _class(name)
        if storage_class is None or storage_class not in prices:
            continue
        cost = holding.bytes / GB * prices[storage_class]
        if storage_class in _ARCHIVE_CLASSES:
            low, high = GLACIER_OVERHEAD
            cost += holding.objects * (low * standard + high * prices[storage_class]) / GB
        found[name] = cost
    return found


def _requests(size: int) -> int:
    """Write requests one copy of ``size`` bytes costs: the parts, then create and complete."""
    return max(1, math.ceil(size / PART)) + 2 if size > PART else 1


def estimate(  # noqa: PLR0913 — keyword-only inputs of one formula, named at the call
    holdings: Mapping[str, Holding],
    costs: Costs,
    *,
    storage_class: StorageClass,
    tier: RestoreTier,
    copy_sizes: list[int],
    thaw_bytes: int,
    thaws: int,
    kaltura_bytes_freed: int,
) -> dict[str, Any]:
    """The estimate as ``stats`` prints it (amounts rounded to cents)."""
    now = storage_per_month(holdings, costs)
    grown = dict(holdings)
    held = grown.get(storage_class.value, Holding())
    grown[storage_class.value] = Holding(held.objects + len(copy_sizes),
                                         held.bytes + sum(copy_sizes))
    after = storage_per_month(grown, costs)
    writes = sum(_requests(size) for size in copy_sizes)
    write_price = costs.requests_per_1000.get(storage_class, 0.0)
    retrieval = costs.retrieval_per_gb.get(storage_class, {}).get(tier, 0.0)
    retrieval_requests = costs.retrieval_requests_per_1000.get(storage_class, {}).get(tier, 0.0)
    saving = None
    if costs.kaltura_per_gb_month is not None:
        saving = round(kaltura_bytes_freed / GB * costs.kaltura_per_gb_month, 2)
    return {
        "currency": costs.currency,
        "prices_as_of": costs.as_of,
        "archive_per_month": round(sum(now.values()), 2),
        "archive_per_month_by_storage_class": {k: round(v, 2) for k, v in sorted(now.items())},
        "archive_per_month_after_plan": round(sum(after.values()), 2),
        "plan_one_time": {
            "copy_requests": round(writes / 1000 * write_price, 2),
            "restores": round(thaw_bytes / GB * retrieval + thaws / 1000 * retrieval_requests,
                              2),
        },
        "kaltura_saving_per_month": saving,
    }
