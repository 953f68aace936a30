"""State and semantics of the emulated Kaltura partner: no HTTP in this package.

``KalturaBackend`` is one partner's whole state, assembled from one mixin per concern:

    state.py        tables, indexes (createdAt-sorted entries, assets by entry), clock, lock, jobs
    listing.py      media.list / baseEntry.list: filters, defaults, order, pager, 10,000 cap
    esearch.py      elasticsearch_esearch.searchEntry over the same index (esearch_fields.py,
                    analysis.py: its vocabulary and how it reads text)
    entries.py      media.add / get / update / delete, tags, plays
    replacement.py  updateContent / addContent / approveReplace / cancelReplace, conversions
    assets.py       flavors, thumbnails, captions, attachments; content for the download endpoint
    params.py       flavor params, flavorAsset.getFlavorAssetsWithParams
    uploads.py      upload tokens
    users.py        user.get / user.list, and the users entries name
    snapshot.py     snapshot() / from_snapshot()

Every public method takes ``lock`` itself, so the backend is safe to call from the server's
threads, from URL-import threads and from tests alike; ``tick()`` finishes due conversions and is
O(1) when nothing is pending.
"""

from __future__ import annotations

from sandbox.kaltura.models.assets import AssetsMixin
from sandbox.kaltura.models.entries import EntriesMixin
from sandbox.kaltura.models.esearch import ESearchMixin
from sandbox.kaltura.models.listing import ListingMixin
from sandbox.kaltura.models.params import ParamsMixin
from sandbox.kaltura.models.replacement import ReplacementMixin
from sandbox.kaltura.models.snapshot import SnapshotMixin
from sandbox.kaltura.models.state import Clock
from sandbox.kaltura.models.uploads import UploadsMixin
from sandbox.kaltura.models.users import UsersMixin

__all__ = ["Clock", "KalturaBackend"]


class KalturaBackend(
    ListingMixin, ESearchMixin, EntriesMixin, ReplacementMixin, AssetsMixin, ParamsMixin,
    UploadsMixin, UsersMixin, SnapshotMixin,
):
    """One partner's emulated Kaltura: ``KalturaBackend(partner=None, clock=None)``."""
