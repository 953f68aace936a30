"""uploadToken: add, upload (chunks, resume, resumeAt, finalChunk), get, list, delete.

Chunks may arrive out of order, as Kaltura's chunked uploaders send them: a chunk that starts past
the current end waits until the gap before it is filled. The token reaches FULL_UPLOAD only on a
final chunk with no gap left; a token used by a resource becomes CLOSED (replacement.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.kaltura.models import errors
from sandbox.kaltura.models.listing import page, split_in
from sandbox.kaltura.models.state import BackendState
from sandbox.kaltura.records import ListResponse, UploadToken, UploadTokenStatus


class UploadsMixin(BackendState):
    """Upload tokens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # token id -> {offset: bytes} of chunks that start past the uploaded end
        self._waiting_chunks: dict[str, dict[int, bytes]] = {}
        self._final_pending: set[str] = set()

    def add_token(self, fields: Mapping[str, Any], user_id: str = "") -> UploadToken:
        with self.lock:
            now = self.now()
            size = fields.get("fileSize")
            token = UploadToken(
                id=self.new_id(), partner_id=self.partner.id, user_id=user_id,
                file_name=str(fields.get("fileName") or ""),
                file_size=float(size) if size not in (None, "") else None,
                created_at=now, updated_at=now,
            )
            self.tokens[token.id] = token
            return token

    def get_token(self, token_id: str) -> UploadToken:
        token = self.tokens.get(token_id)
        if token is None:
            raise errors.token_not_found()
        return token

    def upload_chunk(self, token_id: str, data: bytes, *, resume: bool = False,
                     final_chunk: bool = True, resume_at: int = -1) -> UploadToken:
        with self.lock:
            token = self.get_token(token_id)
            if token.status not in (UploadTokenStatus.PENDING, UploadTokenStatus.PARTIAL_UPLOAD):
                raise errors.token_invalid_for_upload()
            waiting = self._waiting_chunks.setdefault(token.id, {})
            if not resume:
                token.data = bytearray(data)
                waiting.clear()
            else:
                if not token.data and resume_at < 0:
                    raise errors.token_cannot_resume()  # nothing to append to
                offset = len(token.data) if resume_at < 0 else resume_at
                if offset <= len(token.data):
                    token.data[offset : offset + len(data)] = data
                else:
                    waiting[offset] = bytes(data)
                self._merge_waiting(token, waiting)
            if final_chunk:
                self._final_pending.add(token.id)
            done = token.id in self._final_pending and not waiting
            token.status = (UploadTokenStatus.FULL_UPLOAD if done
                            else UploadTokenStatus.PARTIAL_UPLOAD)
            token.uploaded_file_size = len(token.data)
            token.updated_at = self.now()
            if done:
                self._waiting_chunks.pop(token.id, None)
                self._final_pending.discard(token.id)
            return token

    @staticmethod
    def _merge_waiting(token: UploadToken, waiting: dict[int, bytes]) -> None:
        progressed = True
        while progressed and waiting:
            progressed = False
            for offset in sorted(waiting):
                if offset <= len(token.data):
                    chunk = waiting.pop(offset)
                    token.data[offset : offset + len(chunk)] = chunk
                    progressed = True

    def list_tokens(self, f: Mapping[str, Any] | None, pager: Mapping[str, Any] | None
                    ) -> ListResponse:
        f = f or {}
        items = list(self.tokens.values())
        if f.get("idIn"):
            ids = set(split_in(f["idIn"]))
            items = [t for t in items if t.id in ids]
        if f.get("statusEqual") not in (None, ""):
            status = int(f["statusEqual"])
            items = [t for t in items if t.status == status]
        if f.get("statusIn"):
            statuses = {int(s) for s in split_in(f["statusIn"])}
            items = [t for t in items if t.status in statuses]
        if f.get("fileNameEqual"):
            items = [t for t in items if t.file_name == str(f["fileNameEqual"])]
        return ListResponse("KalturaUploadTokenListResponse", page(items, pager), len(items))

    def delete_token(self, token_id: str) -> None:
        with self.lock:
            self.get_token(token_id)
            del self.tokens[token_id]
            self._waiting_chunks.pop(token_id, None)
            self._final_pending.discard(token_id)
