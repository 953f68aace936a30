"""The error tree, as the controller layer names it.

The tree lives in ``policies.errors`` (the lowest layer) so that reconcilers, which may not import
the controller, raise and catch the same types the adapters translate into.
"""

from policies.errors import (
    Conflict,
    IntegrityError,
    KarchiveError,
    NetworkError,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
    UsageError,
)

__all__ = [
    "Conflict",
    "IntegrityError",
    "KarchiveError",
    "NetworkError",
    "NotFound",
    "PermanentError",
    "RateLimited",
    "TransientError",
    "UsageError",
]
