"""Flavor params and ``flavorAsset.getFlavorAssetsWithParams`` (reference section 11.2).

The emulator's partner sees the flavor params of partner 0 only: the source (0) and the four
web/mobile renditions its conversions make (``Partner.derived_flavor_params`` picks from them).
``getFlavorAssetsWithParams(entryId)`` answers as kaltura/server
api_v3/services/FlavorAssetService.php ``getFlavorAssetsWithParamsAction`` does: one item per
flavor asset of the entry in any status but DELETED (3) and TEMP (5), with its params when they
exist; then one item per remaining params with no asset (``flavorAsset`` null). ``entryId`` is on
every item; an unknown or deleted entry is ENTRY_ID_NOT_FOUND.
"""

from __future__ import annotations

from sandbox.kaltura.models.state import BackendState
from sandbox.kaltura.records import FlavorAssetWithParams, FlavorParams, FlavorStatus

# Created with the partner-0 defaults of a Kaltura deployment (names as Kaltura's are written).
_CREATED = 1_262_304_000  # 2010-01-01
SYSTEM_FLAVOR_PARAMS: tuple[FlavorParams, ...] = (
    FlavorParams(0, name="Source", system_name="Source", tags="source,web",
                 description="The original file", created_at=_CREATED, format="",
                 video_codec="", audio_codec=""),
    FlavorParams(301, name="HD/720 - WEB/MBL (H264/2500)", system_name="HD_720",
                 tags="mobile,web,mbr,iphone,ipadnew", created_at=_CREATED, video_bitrate=2500,
                 audio_bitrate=128, width=1280, height=720, frame_rate=30.0),
    FlavorParams(302, name="SD/Large - WEB/MBL (H264/1500)", system_name="SD_Large",
                 tags="mobile,web,mbr,iphone,ipadnew", created_at=_CREATED, video_bitrate=1500,
                 audio_bitrate=96, width=854, height=480, frame_rate=30.0),
    FlavorParams(303, name="SD/Small - WEB/MBL (H264/900)", system_name="SD_Small",
                 tags="mobile,web,mbr,iphone", created_at=_CREATED, video_bitrate=900,
                 audio_bitrate=64, width=640, height=360, frame_rate=30.0),
    FlavorParams(304, name="Basic/Small - WEB/MBL (H264/400)", system_name="Basic_Small",
                 tags="mobile,web,mbr,iphone", created_at=_CREATED, video_bitrate=400,
                 audio_bitrate=64, width=426, height=240, frame_rate=30.0),
)
_BY_ID = {params.id: params for params in SYSTEM_FLAVOR_PARAMS}
_UNLISTED = (FlavorStatus.DELETED, FlavorStatus.TEMP)


class ParamsMixin(BackendState):
    """flavorAsset.getFlavorAssetsWithParams."""

    def flavor_assets_with_params(self, entry_id: str) -> list[FlavorAssetWithParams]:
        with self.lock:
            entry = self.live_entry(entry_id)
            items: list[FlavorAssetWithParams] = []
            used: set[int] = set()
            for flavor in self.flavors_by_entry.get(entry.id, ()):
                if flavor.status in _UNLISTED:
                    continue
                params = _BY_ID.get(flavor.flavor_params_id)
                if params is not None:
                    used.add(params.id)
                items.append(FlavorAssetWithParams(flavor, params, entry.id))
            items.extend(FlavorAssetWithParams(None, params, entry.id)
                         for params in SYSTEM_FLAVOR_PARAMS if params.id not in used)
            return items
