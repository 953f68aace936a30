"""The policy language: the pydantic models behind policy.yaml.

``policies.loader`` parses the YAML and validates it into :class:`Policy`; the selectors, the
desired-state decision and the planner read these frozen values; the controller reads the
connection, storage, limits and schedule sections. Every model forbids unknown keys, so a typo in
policy.yaml is an error and never a silent default. The only I/O is reading files the policy
names (``id_file``, ``admin_secret_file``), relative to the policy file's folder, which the loader
passes as validation context.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from policies import durations
from policies.directory import DirectorySettings
from policies.durations import Duration, Rate, TimeUnit, parse_duration, parse_rate, parse_size
from policies.notice_settings import AddressSource, NoticesSettings
from policies.strict import LocatedValueError, Strict

DurationField = Annotated[
    Duration, BeforeValidator(parse_duration), PlainSerializer(str, return_type=str)
]
SizeField = Annotated[int, BeforeValidator(parse_size)]
RateField = Annotated[Rate, BeforeValidator(parse_rate), PlainSerializer(str, return_type=str)]


class DesiredState(StrEnum):
    """What the policy wants for an entry (design.md "States of an entry")."""

    UNMANAGED = "unmanaged"  # observe only
    ARCHIVED = "archived"  # a verified copy in S3, content stays in Kaltura
    PLACEHOLDER = "placeholder"  # a verified copy in S3, content swapped for the placeholder
    DELETED = "deleted"  # archived completely, then the entry deleted (needs allow_delete)


class StorageClass(StrEnum):
    STANDARD = "STANDARD"
    STANDARD_IA = "STANDARD_IA"
    ONEZONE_IA = "ONEZONE_IA"
    INTELLIGENT_TIERING = "INTELLIGENT_TIERING"
    GLACIER_IR = "GLACIER_IR"
    GLACIER = "GLACIER"
    DEEP_ARCHIVE = "DEEP_ARCHIVE"


class RestoreTier(StrEnum):
    EXPEDITED = "Expedited"
    STANDARD = "Standard"
    BULK = "Bulk"


# KalturaEntryStatus (reference/kaltura-api.md §5) and KalturaMediaType.
ENTRY_STATUSES: dict[str, int] = {
    "error_importing": -2, "error_converting": -1, "import": 0, "preconvert": 1, "ready": 2,
    "deleted": 3, "pending": 4, "moderate": 5, "blocked": 6, "no_content": 7,
}  # fmt: skip
MEDIA_TYPES: dict[str, int] = {"video": 1, "image": 2, "audio": 5}

# Kaltura's limit is per (service, action) over 10 s; operators report about 35 deletes per
# 10 s (reference/kaltura-api.md §10). A policy's rate_limits are laid over these.
DEFAULT_RATE_LIMITS: dict[str, Rate] = {
    "media.delete": Rate(35.0, 10.0),
    "baseentry.delete": Rate(35.0, 10.0),
}
_ACTION_CLASS_RE = re.compile(r"^(default|[a-z_]+\.([a-z_]+|\*))$")


def _context_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir", "."))


def _read_ids(path: Path) -> frozenset[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read id file {str(path)!r} ({exc.strerror}); "
                         "give a path relative to the policy file") from None
    # One id a line; blank lines and "#" comments allowed so a list can be annotated.
    return frozenset(
        line.split("#", 1)[0].strip()
        for line in text.splitlines()
        if line.split("#", 1)[0].strip()
    )


class TagSelector(Strict):
    """Whole tags, compared case-insensitively as Kaltura normalises them."""

    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()

    @field_validator("any", "all", "none", mode="after")
    @classmethod
    def _normalise(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in tags if t.strip())


class Match(Strict):
    """Selectors of a rule (or of a report's command-line filters). All given ones must hold.

    Time selectors compare with the planning instant ``now``; ``unplayed_for`` holds when the
    entry was not played within the span AND was created before it, so a never-played entry
    counts from its creation.
    """

    created_before: DurationField | None = None
    created_within: DurationField | None = None
    unplayed_for: DurationField | None = None
    played_within: DurationField | None = None
    never_played: bool | None = None
    plays_below: int | None = Field(default=None, ge=0)
    categories: tuple[int | str, ...] | None = None
    tags: TagSelector | None = None
    owners: tuple[str, ...] | None = None
    owner_status: Literal["active", "inactive"] | None = None
    statuses: frozenset[int] | None = None
    media_types: frozenset[int] | None = None
    min_size: SizeField | None = None
    max_size: SizeField | None = None
    entry_ids: frozenset[str] | None = None
    id_file: frozenset[str] | None = None

    @field_validator("statuses", mode="before")
    @classmethod
    def _status_names(cls, value: Any) -> Any:
        return _names_to_numbers(value, ENTRY_STATUSES, "status")

    @field_validator("media_types", mode="before")
    @classmethod
    def _media_names(cls, value: Any) -> Any:
        return _names_to_numbers(value, MEDIA_TYPES, "media type")

    @field_validator("id_file", mode="before")
    @classmethod
    def _read_id_file(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return _read_ids(_context_dir(info) / value)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        low, high = self.min_size, self.max_size
        if low is not None and high is not None and low > high:
            raise LocatedValueError(("min_size",), "min_size is larger than max_size; "
                                    "no entry could match")
        if self.never_played and (self.played_within is not None):
            raise LocatedValueError(("never_played",), "never_played: true contradicts "
                                    "played_within; drop one of them")
        return self


def _names_to_numbers(value: Any, names: dict[str, int], what: str) -> Any:
    if not isinstance(value, list | tuple | set | frozenset):
        return value
    numbers: list[Any] = []
    for item in value:
        if isinstance(item, str) and not item.strip().lstrip("-").isdigit():
            key = item.strip().lower().replace(" ", "_")
            if key not in names:
                raise ValueError(f"{item!r} is not a {what}; use one of: {', '.join(names)}")
            numbers.append(names[key])
        else:
            number = int(item)
            if number not in names.values():
                raise ValueError(f"{item!r} is not a {what} number; use one of: "
                                 + ", ".join(f"{n} ({v})" for n, v in names.items()))
            numbers.append(number)
    return frozenset(numbers)


class Rule(Strict):
    """One rule: the first whose ``match`` holds decides the entry's desired state."""

    name: str = Field(min_length=1)
    match: Match = Match()
    state: DesiredState


class KalturaSettings(Strict):
    """How to reach the partner. The secret is a SecretStr: never printed, logged or dumped."""

    service_url: str
    partner_id: int = Field(gt=0)
    admin_secret: SecretStr | None = None
    admin_secret_file: Path | None = None
    user_id: str = ""
    session_type: Literal["admin"] = "admin"
    session_expiry: int = Field(default=86400, ge=60, le=30 * 86400)
    privileges: str = "disableentitlement"
    rate_limits: dict[str, RateField] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    timeout: float = Field(default=60.0, gt=0, le=3600)  # seconds per Kaltura call

    @field_validator("service_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"{url!r} is not an http(s) URL; e.g. https://www.kaltura.com")
        return url.rstrip("/")

    @field_validator("rate_limits", mode="after")
    @classmethod
    def _action_classes(cls, limits: dict[str, Rate]) -> dict[str, Rate]:
        merged = dict(DEFAULT_RATE_LIMITS)
        for key, rate in limits.items():
            name = key.strip().lower()
            if not _ACTION_CLASS_RE.match(name):
                raise ValueError(f"{key!r} is not an action class; write service.action "
                                 "(media.delete), service.* or default")
            merged[name] = rate
        return merged

    @model_validator(mode="after")
    def _one_secret(self, info: ValidationInfo) -> Self:
        if (self.admin_secret is None) == (self.admin_secret_file is None):
            raise ValueError("give exactly one of admin_secret or admin_secret_file")
        if self.admin_secret_file is not None:
            path = _context_dir(info) / self.admin_secret_file
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise LocatedValueError(("admin_secret_file",), f"cannot read {str(path)!r} "
                                        f"({exc.strerror}); check the path and its permissions"
                                        ) from None
            object.__setattr__(self, "admin_secret", SecretStr(secret))
            object.__setattr__(self, "admin_secret_file", path)
        return self

    def rate_for(self, service: str, action: str) -> Rate | None:
        """The budget of one action: exact, then ``service.*``, then ``default``."""
        limits = self.rate_limits
        service, action = service.lower(), action.lower()
        return limits.get(f"{service}.{action}") or limits.get(f"{service}.*") or limits.get(
            "default"
        )


class RestoreSettings(Strict):
    tier: RestoreTier = RestoreTier.BULK
    days: int = Field(default=7, ge=1, le=365)


class StorageSettings(Strict):
    """Where archive copies live: an S3 ``bucket`` (credentials from the AWS environment, never
    from here) or a local or mounted directory, ``url: file:///mnt/nas/karchive`` (exactly one)."""

    bucket: str | None = None
    url: str | None = None
    prefix: str = "karchive/"
    layout: Literal["entry-folder", "legacy"] = "entry-folder"
    storage_class: StorageClass = StorageClass.GLACIER
    restore: RestoreSettings = RestoreSettings()
    endpoint_url: str | None = None
    region: str | None = None
    # Where an archived copy's restore status is read: from the bucket listing
    # (ListObjectsV2 OptionalObjectAttributes=RestoreStatus: AWS, and the sandbox), or with one
    # HEAD per copy whose status decides a transition, for S3-compatible stores that ignore it.
    restore_status: Literal["listing", "head"] = "listing"

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, name: str | None) -> str | None:
        if name is None:
            return None
        # S3 bucket naming rules: 3–63 of lower-case letters, digits, dots and hyphens.
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name):
            raise ValueError(f"{name!r} is not an S3 bucket name; use 3-63 lower-case letters, "
                             "digits, dots and hyphens")
        return name

    @field_validator("prefix")
    @classmethod
    def _prefix_is_folder(cls, prefix: str) -> str:
        prefix = prefix.lstrip("/")
        return prefix if not prefix or prefix.endswith("/") else prefix + "/"

    @field_validator("endpoint_url")
    @classmethod
    def _empty_is_none(cls, url: str | None) -> str | None:
        # "${AWS_ENDPOINT_URL:-}" in the example policy: empty means "AWS itself".
        return url or None

    @field_validator("url")
    @classmethod
    def _file_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not re.match(r"^file:///[^\s]*$", url):
            raise ValueError(f"{url!r} is not a file:// URL of an absolute directory; write "
                             "e.g. file:///mnt/nas/karchive")
        return url.rstrip("/") or "file:///"

    @model_validator(mode="after")
    def _one_location(self) -> Self:
        if (self.bucket is None) == (self.url is None):
            raise ValueError("give exactly one of bucket (an S3 bucket) or url (a directory, "
                             "file:///mnt/nas/karchive)")
        return self

    @property
    def directory(self) -> Path | None:
        """The archive's root directory for a ``file://`` url; None for a bucket."""
        return Path(self.url[len("file://"):] or "/") if self.url else None

    @property
    def location(self) -> str:
        """The bucket name or the url, for messages and lease keys."""
        return self.bucket or self.url or ""

    @model_validator(mode="after")
    def _tier_available(self) -> Self:
        if (self.storage_class is StorageClass.DEEP_ARCHIVE
                and self.restore.tier is RestoreTier.EXPEDITED):
            raise LocatedValueError(("restore", "tier"), "restore tier Expedited is not available "
                                    "for DEEP_ARCHIVE; use Standard (12 h) or Bulk (48 h)")
        return self

    @property
    def needs_thaw(self) -> bool:
        """Whether new copies must be restored before they can be read (never a directory)."""
        frozen = (StorageClass.GLACIER, StorageClass.DEEP_ARCHIVE)
        return self.url is None and self.storage_class in frozen


class Exemptions(Strict):
    """Entries carrying one of these tags or in one of these categories are unmanaged."""

    tags: tuple[str, ...] = ("archive_exempt",)
    categories: tuple[int | str, ...] = ()

    @field_validator("tags", mode="after")
    @classmethod
    def _normalise(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in tags if t.strip())


# S3 multipart limits (reference/s3-glacier.md): parts of 5 MiB to 5 GiB.
_MIN_PART, _MAX_PART = 5 * 2**20, 5 * 2**30
DEFAULT_PART_SIZE = 16 * 2**20  # without limits.part_size (larger past 10,000 parts)


class Limits(Strict):
    """How much one cycle may do, and the guard against a wrong observation."""

    transitions_per_cycle: int = Field(default=100, ge=0, le=10_000_000)
    bytes_per_cycle: SizeField = 2**40
    concurrency: int = Field(default=4, ge=1, le=64)
    max_replace_share: float = Field(default=0.25, gt=0, le=1)
    part_size: SizeField | None = None  # None: chosen per video (≤ 10,000 parts)
    # A copy streams through part buffers: the one being read and ``parallel_parts`` uploading.
    # ``copy_memory`` bounds them for all ``concurrency`` copies together; each copy gets an
    # equal share and uploads fewer parts at once when its share cannot hold more.
    parallel_parts: int = Field(default=4, ge=1, le=32)
    copy_memory: SizeField = 512 * 2**20

    @field_validator("part_size")
    @classmethod
    def _part_bounds(cls, size: int | None) -> int | None:
        if size is not None and not _MIN_PART <= size <= _MAX_PART:
            raise ValueError("part_size must be between 5MiB and 5GiB (S3 multipart limits)")
        return size

    @model_validator(mode="after")
    def _room_for_every_copy(self) -> Self:
        # Two parts per copy at least (one read while one uploads), or copies would stall.
        part = self.part_size or DEFAULT_PART_SIZE
        need = self.concurrency * 2 * part
        if self.copy_memory < need:
            size = durations.format_size
            raise LocatedValueError(("copy_memory",), (
                f"copy_memory {size(self.copy_memory)} cannot hold 2 parts of {size(part)} for "
                f"each of {self.concurrency} concurrent copies; raise it to {size(need)} or "
                "more, or lower concurrency or part_size"))
        return self

    @property
    def part_memory(self) -> int:
        """The part buffers one copy may hold: its share of ``copy_memory``."""
        return self.copy_memory // self.concurrency


class Schedule(Strict):
    """When the daemon runs a cycle: every ``interval`` or on a ``cron`` expression."""

    interval: DurationField | None = None
    cron: str | None = None
    jitter: DurationField = Duration(0, TimeUnit.SECOND)
    restore_check_interval: DurationField = Duration(15, TimeUnit.MINUTE)
    # How often the daemon walks the whole catalogue again; its other cycles refresh the entry
    # index with what changed (controller/runtime/index.py).
    resync_interval: DurationField = Duration(24, TimeUnit.HOUR)

    @field_validator("cron")
    @classmethod
    def _crontab(cls, expression: str | None) -> str | None:
        if expression is None:
            return None
        # APScheduler drives the daemon, so its parser is the judge of a valid expression.
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(expression, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"{expression!r} is not a cron expression ({exc}); write five "
                             "fields: minute hour day month weekday, e.g. '0 2 * * *'") from None
        return expression

    @model_validator(mode="after")
    def _one_trigger(self) -> Self:
        if self.interval is not None and self.cron is not None:
            raise LocatedValueError(("cron",), "give interval or cron, not both")
        if self.interval is None and self.cron is None:
            object.__setattr__(self, "interval", Duration(1, TimeUnit.HOUR))
        if self.interval is not None and self.interval.seconds < 60:
            raise LocatedValueError(("interval",), f"interval {self.interval} is shorter than a "
                                    "minute; use 1min or more")
        if self.resync_interval.seconds < 60:
            raise LocatedValueError(("resync_interval",), f"resync_interval "
                                    f"{self.resync_interval} is shorter than a minute; use 1min "
                                    "or more (every cycle then walks the whole catalogue)")
        return self


# Prices for `karchive stats`' monthly estimate: AWS list prices, us-east-1, first 50 TB a month,
# in USD, as published on https://aws.amazon.com/s3/pricing/ in January 2025 (COSTS_AS_OF). A
# policy's `costs:` section overrides any of them (another region, a negotiated discount).
COSTS_AS_OF = "2025-01"
_STORAGE_PRICES = {  # per GB-month
    StorageClass.STANDARD: 0.023, StorageClass.INTELLIGENT_TIERING: 0.023,
    StorageClass.STANDARD_IA: 0.0125, StorageClass.ONEZONE_IA: 0.01,
    StorageClass.GLACIER_IR: 0.004, StorageClass.GLACIER: 0.0036,
    StorageClass.DEEP_ARCHIVE: 0.00099,
}  # fmt: skip
_WRITE_PRICES = {  # PUT, COPY, POST, LIST: per 1,000 requests
    StorageClass.STANDARD: 0.005, StorageClass.INTELLIGENT_TIERING: 0.005,
    StorageClass.STANDARD_IA: 0.01, StorageClass.ONEZONE_IA: 0.01,
    StorageClass.GLACIER_IR: 0.02, StorageClass.GLACIER: 0.03, StorageClass.DEEP_ARCHIVE: 0.05,
}  # fmt: skip
_RETRIEVAL_PRICES = {  # restore (thaw) per GB, by class and tier; Bulk from GLACIER is free
    StorageClass.GLACIER: {RestoreTier.EXPEDITED: 0.03, RestoreTier.STANDARD: 0.01,
                           RestoreTier.BULK: 0.0},
    StorageClass.DEEP_ARCHIVE: {RestoreTier.STANDARD: 0.02, RestoreTier.BULK: 0.0025},
}
_RETRIEVAL_REQUEST_PRICES = {  # restore requests per 1,000, by class and tier
    StorageClass.GLACIER: {RestoreTier.EXPEDITED: 10.0, RestoreTier.STANDARD: 0.05,
                           RestoreTier.BULK: 0.0},
    StorageClass.DEEP_ARCHIVE: {RestoreTier.STANDARD: 0.10, RestoreTier.BULK: 0.025},
}

Price = Annotated[float, Field(ge=0)]


class Costs(Strict):
    """The prices behind `karchive stats`' cost estimate (never used to decide anything).

    Every price has a default (module constants above, dated ``as_of``); a policy names only
    those it wants changed, and the rest keep their defaults. ``kaltura_per_gb_month`` is what
    the institution pays Kaltura for storage, if known: with it the estimate says what the
    policy's placeholders save.
    """

    currency: str = "USD"
    as_of: str = COSTS_AS_OF
    storage_per_gb_month: dict[StorageClass, Price] = Field(
        default_factory=lambda: dict(_STORAGE_PRICES))
    requests_per_1000: dict[StorageClass, Price] = Field(
        default_factory=lambda: dict(_WRITE_PRICES))
    retrieval_per_gb: dict[StorageClass, dict[RestoreTier, Price]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in _RETRIEVAL_PRICES.items()})
    retrieval_requests_per_1000: dict[StorageClass, dict[RestoreTier, Price]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in _RETRIEVAL_REQUEST_PRICES.items()})
    kaltura_per_gb_month: Price | None = None

    @field_validator("storage_per_gb_month", "requests_per_1000", mode="after")
    @classmethod
    def _over_flat_defaults(cls, given: dict[StorageClass, float], info: ValidationInfo
                            ) -> dict[StorageClass, float]:
        defaults = _STORAGE_PRICES if info.field_name == "storage_per_gb_month" else _WRITE_PRICES
        return {**defaults, **given}

    @field_validator("retrieval_per_gb", "retrieval_requests_per_1000", mode="after")
    @classmethod
    def _over_tier_defaults(cls, given: dict[StorageClass, dict[RestoreTier, float]],
                            info: ValidationInfo) -> dict[StorageClass, dict[RestoreTier, float]]:
        defaults = (_RETRIEVAL_PRICES if info.field_name == "retrieval_per_gb"
                    else _RETRIEVAL_REQUEST_PRICES)
        merged = {k: dict(v) for k, v in defaults.items()}
        for storage_class, tiers in given.items():
            merged.setdefault(storage_class, {}).update(tiers)
        return merged


class Policy(Strict):
    """A whole policy.yaml."""

    version: Literal[1]
    kaltura: KalturaSettings
    storage: StorageSettings
    placeholder: str | None = None
    # The byte size of the Princeton tool's placeholder video: an entry with both of its tags
    # and an original of exactly this size is taken for one of its placeholders (never by size
    # alone). Unset: no entry is taken for that tool's placeholder.
    legacy_placeholder_size: SizeField | None = None
    rules: tuple[Rule, ...] = ()
    restore_on_play: bool = False
    exemptions: Exemptions = Exemptions()
    limits: Limits = Limits()
    schedule: Schedule = Schedule()
    suspend: bool = False
    allow_delete: bool = False
    directory: DirectorySettings | None = None
    costs: Costs = Costs()
    notices: NoticesSettings | None = None  # owners told before a swap or a purge

    @field_validator("placeholder")
    @classmethod
    def _placeholder_location(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or re.match(r"^[a-z][a-z0-9+.-]*://", value):
            return value
        return str((_context_dir(info) / value).resolve())

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.name in names:
                raise LocatedValueError(("rules", index, "name"), f"rule name {rule.name!r} is "
                                        "used twice; give every rule its own name")
            names.add(rule.name)
            if rule.state is DesiredState.DELETED and not self.allow_delete:
                raise LocatedValueError(("rules", index, "state"), "state 'deleted' needs "
                                        "'allow_delete: true' at the top of the policy")
            if rule.state is DesiredState.PLACEHOLDER and self.placeholder is None:
                raise LocatedValueError(("rules", index, "state"), "state 'placeholder' needs "
                                        "'placeholder:', the video that replaces the content")
        return self

    @model_validator(mode="after")
    def _notice_addresses(self) -> Self:
        notices = self.notices
        if notices is not None and notices.addresses is AddressSource.DIRECTORY \
                and self.directory is None:
            raise LocatedValueError(("notices", "addresses"), "addresses: directory needs the "
                                    "'directory:' section (or use addresses: kaltura)")
        return self

    def uses_owner_status(self) -> bool:
        """Whether any rule needs the directory (so the controller knows to look owners up)."""
        return any(rule.match.owner_status is not None for rule in self.rules)
