"""Loading policy.yaml: valid policies load, every kind of mistake is one line with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.durations import Duration, Rate, TimeUnit
from policies.loader import PolicyError, load_policy, parse_policy
from policies.schema import DesiredState, Policy, RestoreTier, StorageClass

BASE = """\
version: 1
kaltura:
  service_url: http://127.0.0.1:8080
  partner_id: 101
  admin_secret: hunter2-secret
storage:
  bucket: karchive-test
"""  # lines 1-7; additions below start at line 8

SANDBOX_ENV = {
    "KALTURA_SERVICE_URL": "http://127.0.0.1:8080",
    "KALTURA_PARTNER_ID": "101",
    "KALTURA_ADMIN_SECRET": "hunter2-secret",
    "KALTURA_USER_ID": "admin@example.edu",
    "KARCHIVE_BUCKET": "karchive-demo",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
}
EXAMPLE = Path(__file__).resolve().parents[2] / "policy.yaml"


def load(text: str, environ: dict[str, str] | None = None, base_dir: Path | None = None
         ) -> Policy:
    return parse_policy(text, "policy.yaml", base_dir=base_dir, environ=environ or {})


def error(text: str, environ: dict[str, str] | None = None, base_dir: Path | None = None) -> str:
    with pytest.raises(PolicyError) as caught:
        load(text, environ, base_dir)
    message = str(caught.value)
    assert "\n" not in message, "an error is one line"
    assert "hunter2" not in message, "a secret never appears in an error"
    return message


def test_a_minimal_policy_loads_with_documented_defaults() -> None:
    policy = load(BASE)
    assert policy.storage.prefix == "karchive/"
    assert policy.storage.layout == "entry-folder"
    assert policy.storage.storage_class is StorageClass.GLACIER
    assert policy.storage.restore.tier is RestoreTier.BULK
    assert policy.kaltura.session_expiry == 86400
    assert policy.kaltura.privileges == "disableentitlement"
    assert policy.kaltura.rate_for("media", "delete") == Rate(35, 10)
    assert policy.exemptions.tags == ("archive_exempt",)
    assert policy.schedule.interval == Duration(1, TimeUnit.HOUR)
    assert policy.rules == () and not policy.allow_delete and not policy.suspend


def test_the_example_policy_loads_with_the_sandbox_variables() -> None:
    policy = load_policy(EXAMPLE, environ=SANDBOX_ENV)
    assert policy.kaltura.partner_id == 101
    assert policy.kaltura.service_url == "http://127.0.0.1:8080"
    assert policy.storage.bucket == "karchive-demo"
    assert policy.storage.endpoint_url == "http://127.0.0.1:9000"
    assert [rule.name for rule in policy.rules] == ["keep-recent", "old-lectures",
                                                    "backup-everything-else"]
    assert policy.placeholder == str(EXAMPLE.parent / "placeholder.mp4")


def test_the_example_policy_runs_against_aws_when_no_endpoint_is_set() -> None:
    environ = {k: v for k, v in SANDBOX_ENV.items() if k != "AWS_ENDPOINT_URL"}
    assert load_policy(EXAMPLE, environ=environ).storage.endpoint_url is None


def test_the_example_policy_names_a_missing_variable_and_its_line() -> None:
    environ = {k: v for k, v in SANDBOX_ENV.items() if k != "KARCHIVE_BUCKET"}
    with pytest.raises(PolicyError) as caught:
        load_policy(EXAMPLE, environ=environ)
    line = next(n for n, text in enumerate(EXAMPLE.read_text().splitlines(), 1)
                if "${KARCHIVE_BUCKET}" in text)
    assert str(caught.value) == (
        f"{EXAMPLE}:{line}: storage.bucket: environment variable KARCHIVE_BUCKET is not set; "
        "export it or write ${KARCHIVE_BUCKET:-default}"
    )


@pytest.mark.parametrize(
    ("addition", "expected"),
    [
        (
            "rules:\n  - name: old\n    match:\n      unplayed_for: 3yr\n    state: archived\n",
            "policy.yaml:11: rules[0].match.unplayed_for: '3yr' is not a duration; use a number "
            "and a unit, e.g. 3y, 18mo, 6w, 90d, 12h",
        ),
        (
            "rules:\n  - name: old\n    match:\n      unplayd_for: 3y\n    state: archived\n",
            "policy.yaml:11: rules[0].match.unplayd_for: unknown key 'unplayd_for'; "
            "did you mean 'unplayed_for'?",
        ),
        (
            "zzz: 1\n",
            "policy.yaml:8: zzz: unknown key 'zzz'; allowed keys: allow_delete, costs, directory, "
            "exemptions, kaltura, legacy_placeholder_size, limits, notices, placeholder, "
            "restore_on_play, rules, schedule, storage, suspend, version",
        ),
        (
            "rules:\n  - name: a\n    state: archivd\n",
            "policy.yaml:10: rules[0].state: 'archivd' is not allowed; did you mean 'archived'?",
        ),
        (
            "rules:\n  - name: purge\n    state: deleted\n",
            "policy.yaml:10: rules[0].state: state 'deleted' needs 'allow_delete: true' at the "
            "top of the policy",
        ),
        (
            "rules:\n  - name: a\n    state: placeholder\n",
            "policy.yaml:10: rules[0].state: state 'placeholder' needs 'placeholder:', the video "
            "that replaces the content",
        ),
        (
            "rules:\n  - name: a\n    state: archived\n  - name: a\n    state: archived\n",
            "policy.yaml:11: rules[1].name: rule name 'a' is used twice; give every rule its own "
            "name",
        ),
        (
            "rules:\n  - name: a\n    match: {statuses: [redy]}\n    state: archived\n",
            "policy.yaml:10: rules[0].match.statuses: 'redy' is not a status; use one of: "
            "error_importing, error_converting, import, preconvert, ready, deleted, pending, "
            "moderate, blocked, no_content",
        ),
        (
            "rules:\n  - name: a\n    match: {min_size: 2GB, max_size: 1GB}\n    state: archived\n",
            "policy.yaml:10: rules[0].match.min_size: min_size is larger than max_size; no entry "
            "could match",
        ),
        (
            "rules:\n  - name: a\n    match:\n      owner_status: unknown\n    state: archived\n",
            "policy.yaml:11: rules[0].match.owner_status: 'unknown' is not allowed; use one of: "
            "active, inactive",
        ),
        (
            "limits:\n  max_replace_share: lots\n",
            "policy.yaml:9: limits.max_replace_share: 'lots' is not a number; write e.g. 0.25",
        ),
        (
            "limits:\n  part_size: 1MiB\n",
            "policy.yaml:9: limits.part_size: part_size must be between 5MiB and 5GiB (S3 "
            "multipart limits)",
        ),
        (
            "limits:\n  concurrency: 32\n",
            "policy.yaml:9: limits.copy_memory: copy_memory 512.0 MiB cannot hold 2 parts of "
            "16.0 MiB for each of 32 concurrent copies; raise it to 1.0 GiB or more, or lower "
            "concurrency or part_size",
        ),
        (
            "limits:\n  concurrency: 8\n  part_size: 64MiB\n  copy_memory: 1000MiB\n",
            "policy.yaml:11: limits.copy_memory: copy_memory 1000.0 MiB cannot hold 2 parts of "
            "64.0 MiB for each of 8 concurrent copies; raise it to 1.0 GiB or more, or lower "
            "concurrency or part_size",
        ),
        (
            "limits:\n  parallel_parts: 0\n",
            "policy.yaml:9: limits.parallel_parts: must be greater than or equal to 1; fix the "
            "value",
        ),
        (
            "schedule:\n  interval: 18m\n",
            "policy.yaml:9: schedule.interval: '18m' is ambiguous; write 18mo for months or "
            "18min for minutes",
        ),
        (
            "schedule:\n  interval: 1h\n  cron: '0 2 * * *'\n",
            "policy.yaml:10: schedule.cron: give interval or cron, not both",
        ),
        (
            "suspend: maybe\n",
            "policy.yaml:8: suspend: 'maybe' is not true or false; write true or false",
        ),
        (
            "rules:\n  name: a\n",
            "policy.yaml:9: rules: must be a list; write [a, b] or one '- item' line each",
        ),
        (
            "exemptions: [a]\n",
            "policy.yaml:8: exemptions: must be a section of 'key: value' lines; indent its keys "
            "under it",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_file_line_field_and_fix(addition: str, expected: str
                                                                 ) -> None:
    assert error(BASE + addition) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE.replace("partner_id: 101", "partner_id: abc"),
         "policy.yaml:4: kaltura.partner_id: 'abc' is not a whole number; write digits, e.g. 42"),
        (BASE.replace("bucket: karchive-test", "bucket: My_Bucket"),
         "policy.yaml:7: storage.bucket: 'My_Bucket' is not an S3 bucket name; use 3-63 "
         "lower-case letters, digits, dots and hyphens"),
        (BASE.replace("  bucket: karchive-test\n", "  prefix: x/\n"),
         "policy.yaml:7: storage: give exactly one of bucket (an S3 bucket) or url (a "
         "directory, file:///mnt/nas/karchive)"),
        (BASE.replace("  bucket: karchive-test\n", "  bucket: b-1\n  url: file:///srv/a\n"),
         "policy.yaml:7: storage: give exactly one of bucket (an S3 bucket) or url (a "
         "directory, file:///mnt/nas/karchive)"),
        (BASE.replace("  bucket: karchive-test\n", "  url: nas/karchive\n"),
         "policy.yaml:7: storage.url: 'nas/karchive' is not a file:// URL of an absolute "
         "directory; write e.g. file:///mnt/nas/karchive"),
        (BASE.replace("storage:\n  bucket: karchive-test\n", ""),
         "policy.yaml:1: storage: is required; add 'storage:' to the top level"),
        (BASE.replace("version: 1", "version: 2"),
         "policy.yaml:1: version: 2 is not allowed; use one of: 1"),
        (BASE + "  storage_class: DEEP_ARCHIVE\n  restore:\n    tier: Expedited\n",
         "policy.yaml:10: storage.restore.tier: restore tier Expedited is not available for "
         "DEEP_ARCHIVE; use Standard (12 h) or Bulk (48 h)"),
        (BASE + "  storage_class: GLACIR\n",
         "policy.yaml:8: storage.storage_class: 'GLACIR' is not allowed; did you mean "
         "'GLACIER'?"),
        (BASE + "storage:\n  bucket: again\n",
         "policy.yaml:8: storage: this key appears twice in the same section; keep one"),
        (BASE.replace("service_url: http://127.0.0.1:8080", "service_url: kaltura.example"),
         "policy.yaml:3: kaltura.service_url: 'kaltura.example' is not an http(s) URL; e.g. "
         "https://www.kaltura.com"),
        (BASE.replace("  admin_secret: hunter2-secret\n", ""),
         "policy.yaml:3: kaltura: give exactly one of admin_secret or admin_secret_file"),
        (BASE + "kaltura_extra: 1\n",
         "policy.yaml:8: kaltura_extra: unknown key 'kaltura_extra'; did you mean 'kaltura'?"),
        (BASE.replace("  admin_secret: hunter2-secret", "  admin_secret: [hunter2-secret]"),
         "policy.yaml:5: kaltura.admin_secret: must be text; quote the value"),
        ("version: 1\nkaltura: [\n",
         "policy.yaml:3: YAML syntax error: expected the node content, but found '<stream "
         "end>'; check the indentation and quoting on this line or the one above"),
        ("version: 1\n  kaltura: x\n",
         "policy.yaml:2: YAML syntax error: mapping values are not allowed here; check the "
         "indentation and quoting on this line or the one above"),
        ("", "policy.yaml:1: the policy is empty; start from the example policy.yaml of the "
         "project"),
        ("- a\n- b\n", "policy.yaml:1: the policy must be a mapping of sections (version, "
         "kaltura, storage, rules, ...)"),
    ],
)
def test_whole_file_mistakes(text: str, expected: str) -> None:
    assert error(text) == expected


def test_rate_limit_classes_are_checked_and_laid_over_the_defaults() -> None:
    policy = load(BASE.replace("  admin_secret: hunter2-secret\n",
                               "  admin_secret: hunter2-secret\n  rate_limits:\n"
                               "    Media.UpdateContent: 20/10s\n    flavorasset.*: 5/s\n"
                               "    default: 100/s\n"))
    kaltura = policy.kaltura
    assert kaltura.rate_for("media", "updateContent") == Rate(20, 10)
    assert kaltura.rate_for("flavorAsset", "getUrl") == Rate(5, 1)
    assert kaltura.rate_for("media", "delete") == Rate(35, 10)
    assert kaltura.rate_for("session", "start") == Rate(100, 1)
    bad = BASE.replace("  admin_secret: hunter2-secret\n",
                       "  admin_secret: hunter2-secret\n  rate_limits:\n    delete: 1/s\n")
    assert error(bad) == ("policy.yaml:7: kaltura.rate_limits: 'delete' is not an action class; "
                          "write service.action (media.delete), service.* or default")


def test_interpolation_substitutes_defaults_and_escapes() -> None:
    text = BASE.replace("bucket: karchive-test", "bucket: ${BUCKET:-fallback-bucket}") + (
        "storage_extra_line_is_not_allowed: 1\n" if False else ""
    ) + "placeholder: '$${NOT_A_VAR}/x.mp4'\n"
    policy = load(text.replace("partner_id: 101", "partner_id: ${PARTNER}"),
                  environ={"PARTNER": "0101"})
    assert policy.storage.bucket == "fallback-bucket"
    assert policy.kaltura.partner_id == 101
    assert policy.placeholder is not None and policy.placeholder.endswith("${NOT_A_VAR}/x.mp4")
    set_but_empty = load(text.replace("partner_id: 101", "partner_id: 7"), environ={"BUCKET": ""})
    assert set_but_empty.storage.bucket == "fallback-bucket"


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        ("bucket: ${NOPE}", "policy.yaml:7: storage.bucket: environment variable NOPE is not "
         "set; export it or write ${NOPE:-default}"),
        ("bucket: ${1BAD}", "policy.yaml:7: storage.bucket: '${1BAD}' is not a variable "
         "reference; write ${NAME} or ${NAME:-default}"),
    ],
)
def test_interpolation_errors_name_variable_file_and_line(replacement: str, expected: str
                                                           ) -> None:
    assert error(BASE.replace("bucket: karchive-test", replacement)) == expected


def test_an_interpolated_value_that_fails_validation_is_reported_at_its_line() -> None:
    text = BASE.replace("partner_id: 101", "partner_id: ${PARTNER}")
    assert error(text, {"PARTNER": "abc"}) == (
        "policy.yaml:4: kaltura.partner_id: 'abc' is not a whole number; write digits, e.g. 42")


def test_secrets_never_appear_in_repr_str_or_dumps() -> None:
    policy = load(BASE)
    assert policy.kaltura.admin_secret is not None
    assert policy.kaltura.admin_secret.get_secret_value() == "hunter2-secret"
    for shown in (repr(policy), str(policy), policy.model_dump_json(), str(policy.model_dump())):
        assert "hunter2" not in shown


def test_secret_validation_errors_do_not_echo_the_value() -> None:
    text = BASE.replace("admin_secret: hunter2-secret", "admin_secret: {hunter2: x}")
    assert error(text) == "policy.yaml:5: kaltura.admin_secret: must be text; quote the value"


def test_files_named_by_the_policy_are_read_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("hunter2-from-file\n")
    (tmp_path / "ids.txt").write_text("0_aaaaaaaa\n# a comment\n\n0_bbbbbbbb  # inline\n")
    text = BASE.replace("admin_secret: hunter2-secret", "admin_secret_file: secret.txt") + (
        "rules:\n  - name: listed\n    match:\n      id_file: ids.txt\n    state: archived\n"
    )
    (tmp_path / "policy.yaml").write_text(text)
    policy = load_policy(tmp_path / "policy.yaml", environ={})
    secret = policy.kaltura.admin_secret
    assert secret is not None and secret.get_secret_value() == "hunter2-from-file"
    assert "hunter2" not in repr(policy)
    assert policy.rules[0].match.id_file == frozenset({"0_aaaaaaaa", "0_bbbbbbbb"})


def test_a_missing_id_file_is_reported_at_its_line(tmp_path: Path) -> None:
    text = BASE + "rules:\n  - name: listed\n    match:\n      id_file: nope.txt\n" \
        "    state: archived\n"
    message = error(text, base_dir=tmp_path)
    assert message.startswith("policy.yaml:11: rules[0].match.id_file: cannot read id file ")
    assert message.endswith("(No such file or directory); give a path relative to the policy file")


def test_a_missing_secret_file_is_reported_at_its_line(tmp_path: Path) -> None:
    text = BASE.replace("admin_secret: hunter2-secret", "admin_secret_file: nope")
    message = error(text, base_dir=tmp_path)
    assert message.startswith("policy.yaml:5: kaltura.admin_secret_file: cannot read ")


def test_a_missing_policy_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "absent.yaml")
    assert str(caught.value) == (f"{tmp_path / 'absent.yaml'}: cannot read the policy (No such "
                                 "file or directory); check the path given with -f")


def test_yaml_merge_keys_and_plain_keys_like_no_work() -> None:
    text = BASE + (
        "rules:\n"
        "  - &base {name: a, state: archived, match: {plays_below: 3}}\n"
        "  - <<: *base\n"
        "    name: b\n"
    )
    policy = load(text)
    assert [r.name for r in policy.rules] == ["a", "b"]
    assert policy.rules[1].match.plays_below == 3
    assert error(BASE + "no: 1\n").startswith("policy.yaml:8: no: unknown key 'no';")


def test_the_directory_section_uses_the_directory_model() -> None:
    text = BASE + "directory:\n  url: ldap://127.0.0.1:389\n  base: o=example\n"
    policy = load(text)
    assert policy.directory is not None
    assert policy.directory.url == "ldap://127.0.0.1:389"
    assert error(BASE + "directory:\n  url: http://x\n") == (
        "policy.yaml:9: directory.url: url must be ldap://host[:port] or ldaps://host[:port], "
        "got 'http://x'")


def test_rules_selectors_and_states_load() -> None:
    text = BASE + "allow_delete: true\nplaceholder: https://cdn.example/ph.mp4\nrules:\n" + (
        "  - name: all-selectors\n"
        "    match:\n"
        "      created_before: 3y\n      created_within: 10y\n      unplayed_for: 2y\n"
        "      never_played: false\n      plays_below: 5\n      categories: [12, 'A>B']\n"
        "      tags: {any: [Lecture], all: [x], none: [Keep]}\n      owners: [jdoe]\n"
        "      owner_status: inactive\n      statuses: [ready, 7]\n"
        "      media_types: [video, audio]\n      min_size: 500MB\n      max_size: 10GiB\n"
        "      entry_ids: [0_abcdefgh]\n"
        "    state: deleted\n"
        "  - name: placeholders\n    state: placeholder\n"
    )
    policy = load(text)
    match = policy.rules[0].match
    assert policy.rules[0].state is DesiredState.DELETED
    assert policy.placeholder == "https://cdn.example/ph.mp4"
    assert match.tags is not None and match.tags.any == ("lecture",)
    assert match.tags.none == ("keep",)
    assert match.statuses == frozenset({2, 7})
    assert match.media_types == frozenset({1, 5})
    assert (match.min_size, match.max_size) == (500_000_000, 10 * 2**30)
    assert policy.uses_owner_status()


def test_cron_schedules_are_checked_by_the_scheduler() -> None:
    assert load(BASE + "schedule:\n  cron: '0 2 * * *'\n").schedule.cron == "0 2 * * *"
    message = error(BASE + "schedule:\n  cron: '0 2 * *'\n")
    assert message.startswith("policy.yaml:9: schedule.cron: '0 2 * *' is not a cron expression")
    assert message.endswith("e.g. '0 2 * * *'")


def test_the_example_policys_commented_directory_section_is_valid() -> None:
    text = EXAMPLE.read_text()
    block = text[text.index("# directory:"):].splitlines()
    section = ["directory:"] + [
        "  " + line.removeprefix("#   ").split("  #")[0]
        for line in block if line.startswith("#   ")
    ]
    policy = parse_policy(text + "\n".join(section) + "\n", str(EXAMPLE),
                          environ=SANDBOX_ENV | {"LDAP_PASSWORD": "ldap-secret"})
    assert policy.directory is not None
    assert policy.directory.url == "ldaps://ldap.example.edu"
    assert policy.directory.batch_size == 50
    assert "ldap-secret" not in repr(policy)


@pytest.mark.parametrize(
    ("addition", "expected"),
    [
        ("? [a, b]\n: 1\n", "policy.yaml:8: a key must be a plain word; write 'name: value'"),
        ("directory:\n  url: ldap://h\n  bsae: o=x\n",
         "policy.yaml:10: directory.bsae: unknown key 'bsae'; did you mean 'base'?"),
        ("limits:\n  xyzzy: 1\n",
         "policy.yaml:9: limits.xyzzy: unknown key 'xyzzy'; allowed keys: bytes_per_cycle, "
         "concurrency, copy_memory, max_replace_share, parallel_parts, part_size, "
         "transitions_per_cycle"),
        ("rules:\n  - name: a\n    state: archived\n    match:\n      tags: {some: [x]}\n",
         "policy.yaml:12: rules[0].match.tags.some: unknown key 'some'; allowed keys: all, any, "
         "none"),
    ],
)
def test_unknown_keys_are_named_with_the_keys_of_their_own_section(addition: str,
                                                                   expected: str) -> None:
    assert error(BASE + addition) == expected


@pytest.mark.parametrize(
    ("addition", "expected"),
    [
        ("rules:\n  - name: a\n    match: {categories: [1, {x: 1}]}\n    state: archived\n",
         "policy.yaml:10: rules[0].match.categories[1]: {'x': 1} is neither a number nor text; "
         "write an id or a name"),
        ("rules:\n  - name: a\n    match: {plays_below: 3}\n",
         "policy.yaml:9: rules[0].state: is required; add 'state:' to rules[0]"),
    ],
)
def test_list_items_are_named_by_index(addition: str, expected: str) -> None:
    assert error(BASE + addition) == expected
