"""policy.yaml as the daemon sees it: re-read when it changes, the last good one kept.

Before each cycle (``runtime/daemon.py``) the daemon asks :meth:`PolicySource.refresh`; an edit
that does not validate is logged in one line, counted (``karchive_policy_reload_failures_total``,
``karchive_policy_edit_rejected``) and ignored — the policy in force stays in force.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from controller.runtime.metrics import Metrics
from policies.loader import PolicyError, parse_policy
from policies.schema import Policy

log = logging.getLogger("controller.runtime.daemon")  # the daemon's log: one stream to read


class PolicySource:
    """policy.yaml as the daemon sees it: re-read when its bytes change, the last good kept."""

    def __init__(self, path: Path, metrics: Metrics) -> None:
        self.path = path
        self._metrics = metrics
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size): a cheap "changed?"
        self._digest = ""
        self.policy: Policy | None = None
        self.error: str | None = None  # the last rejected edit, until a good one replaces it

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when a new valid policy took effect."""
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return False
            data = self.path.read_bytes()
        except OSError as exc:
            return self._reject(f"{self.path}: cannot read the policy ({exc.strerror}); "
                                "check the path given with -f")
        self._stamp = stamp
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return False  # touched, not changed
        self._digest = digest
        try:
            text = data.decode("utf-8")
            policy = parse_policy(text, str(self.path), base_dir=self.path.parent)
        except UnicodeDecodeError:
            return self._reject(f"{self.path}: the policy is not UTF-8 text; save it as UTF-8")
        except PolicyError as exc:
            return self._reject(str(exc))
        first = self.policy is None
        self.policy, self.error = policy, None
        self._metrics.edit_rejected(False)
        log.info("policy loaded" if first else "policy reloaded",
                 extra={"policy": str(self.path), "rules": len(policy.rules),
                        "sha256": digest[:12]})
        return True

    def _reject(self, message: str) -> bool:
        self.error = message
        self._metrics.reload_failed()
        self._metrics.edit_rejected(self.policy is not None)  # an older policy is in force
        if self.policy is None:
            log.error("policy invalid: %s", message)
        else:
            log.error("policy edit rejected, the last good policy stays in force: %s", message)
        return False
