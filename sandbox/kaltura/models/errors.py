"""Every API error the models raise, with Kaltura's exact code, message and args.

Codes and message texts are those of the Kaltura server's error catalogue
(kaltura/server api_v3/lib/KalturaErrors.php and the caption / attachment plugin error classes),
so a client matching on ``code`` or showing ``message`` sees what a real partner returns.
"""

from __future__ import annotations

from sandbox.kaltura.exceptions import KalturaError, entry_not_found

__all__ = ["KalturaError", "entry_not_found"]


def _plain(code: str, message: str) -> KalturaError:
    return KalturaError(code, message)


def _with_id(code: str, template: str, name: str, value: str) -> KalturaError:
    return KalturaError(code, template.format(value), {name: value})


def missing_parameter(name: str) -> KalturaError:
    return _with_id("MISSING_MANDATORY_PARAMETER", 'Missing parameter "{}"', "PARAM_NAME", name)


def not_updatable(class_name: str, prop: str) -> KalturaError:
    # KalturaObject::validateForUpdate / validateForInsert: a read-only (or insert-only) property
    # sent with a value different from the current one.
    name = f"{class_name}::{prop}"
    return _with_id("PROPERTY_VALIDATION_NOT_UPDATABLE", 'The property "{}" cannot be updated',
                    "PROP_NAME", name)


def query_exceeded() -> KalturaError:
    return _plain("QUERY_EXCEEDED_MAX_MATCHES_ALLOWED",
                  "Unable to generate list. max matches value was reached")


def entry_already_with_content() -> KalturaError:
    return _plain("ENTRY_ALREADY_WITH_CONTENT", "Entry already associated with content")


def replacement_exists() -> KalturaError:
    return _plain("ENTRY_REPLACEMENT_ALREADY_EXISTS", "Entry already in replacement")


def entry_not_replaced(entry_id: str) -> KalturaError:
    return _with_id("ENTRY_ID_NOT_REPLACED", 'Entry id "{}" not replaced', "ENTRY_ID", entry_id)


def resource_not_supported(object_type: str) -> KalturaError:
    return _with_id("RESOURCE_TYPE_NOT_SUPPORTED", 'Resource type "{}" not supported', "RES_TYPE",
                    object_type)


def flavor_not_found(asset_id: str) -> KalturaError:
    return _with_id("FLAVOR_ASSET_ID_NOT_FOUND", 'Flavor asset id "{}" not found', "ID", asset_id)


def flavor_not_ready() -> KalturaError:
    return _plain("FLAVOR_ASSET_IS_NOT_READY", "The flavor asset is not ready")


def original_missing() -> KalturaError:
    return _plain("ORIGINAL_FLAVOR_ASSET_IS_MISSING", "The original flavor asset is missing")


def reconvert_original() -> KalturaError:
    return _plain("FLAVOR_ASSET_RECONVERT_ORIGINAL", "Cannot reconvert original flavor asset")


def thumb_not_found(asset_id: str) -> KalturaError:
    return _with_id("THUMB_ASSET_ID_NOT_FOUND", 'The Thumbnail asset id "{}" not found', "ID",
                    asset_id)


def thumb_not_ready() -> KalturaError:
    return _plain("THUMB_ASSET_IS_NOT_READY", "The thumbnail asset is not ready")


def thumb_is_default(asset_id: str) -> KalturaError:
    return _with_id("THUMB_ASSET_IS_DEFAULT",
                    'Thumbnail asset "{}" is default and could not be deleted', "ASSET", asset_id)


def caption_not_found(asset_id: str) -> KalturaError:
    return _with_id("CAPTION_ASSET_ID_NOT_FOUND", 'Caption asset id "{}" not found', "ASSET_ID",
                    asset_id)


def attachment_not_found(asset_id: str) -> KalturaError:
    return _with_id("ATTACHMENT_ASSET_ID_NOT_FOUND", 'Attachment asset id "{}" not found',
                    "ASSET_ID", asset_id)


def token_not_found() -> KalturaError:
    return _plain("UPLOAD_TOKEN_NOT_FOUND", "Upload token not found")


def token_invalid_for_upload() -> KalturaError:
    return _plain("UPLOAD_TOKEN_INVALID_STATUS_FOR_UPLOAD",
                  "Upload token is in an invalid status for uploading a file, maybe the file was "
                  "already uploaded")


def token_invalid_for_entry() -> KalturaError:
    return _plain("UPLOAD_TOKEN_INVALID_STATUS_FOR_ADD_ENTRY",
                  "Upload token is in an invalid status for adding entry, maybe the a file was "
                  "not uploaded or the token was used")


def token_cannot_resume() -> KalturaError:
    return _plain("UPLOAD_TOKEN_CANNOT_RESUME",
                  "Cannot resume the upload, original file was not found")
