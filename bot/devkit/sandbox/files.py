"""Files: what bots upload or people send, served back by file_id and over /file/.

One layer of the Telegram stand-in (the layers: bot/devkit/sandbox/server.py).
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from bot.devkit.sandbox.core import _FILE_DIRS, SandboxCore
from bot.devkit.sandbox.spec import ApiError, Upload, bad_request
from bot.devkit.sandbox.state import BotAccount, FileRecord

__all__ = ["FileStore"]


class FileStore(SandboxCore):
    """Files: what bots upload or people send, served back by file_id and over /file/."""

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        bot = self.bots.get(request.match_info["token"])
        if bot is None:
            return web.json_response(ApiError(401, "Unauthorized").to_json(), status=401)
        record = self._files_by_path.get(request.match_info["path"])
        if record is None:
            return web.json_response(ApiError(404, "Not Found").to_json(), status=404)
        return web.Response(body=record.data, content_type=record.mime_type or "application/octet-stream")

    def store_file(
        self, data: bytes, kind: str, *, mime_type: str | None = None, file_name: str | None = None
    ) -> FileRecord:
        self._file_counter += 1
        unique = f"AQAD{secrets.token_hex(6)}"
        file_id = f"{kind[:2].upper()}ACAgUAAx{self._file_counter:06d}{secrets.token_hex(8)}"
        folder, ext = _FILE_DIRS.get(kind, ("files", ""))
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1]
        record = FileRecord(
            file_id=file_id,
            file_unique_id=unique,
            data=data,
            file_path=f"{folder}/file_{self._file_counter}{ext}",
            kind=kind,
            mime_type=mime_type,
            file_name=file_name,
        )
        self.files[file_id] = record
        self._files_by_path[record.file_path] = record
        return record

    def file_bytes(self, file_id: str) -> bytes:
        return self.files[file_id].data

    def _resolve_input_file(self, value: Any, kind: str) -> FileRecord:
        if isinstance(value, Upload):
            mime = value.content_type if value.content_type != "application/octet-stream" else None
            return self.store_file(value.data, kind, mime_type=mime, file_name=value.filename)
        if isinstance(value, str):
            if value.startswith("attach://"):
                raise bad_request("wrong file identifier/HTTP URL specified")
            if value in self.files:
                return self.files[value]
            if value.startswith(("http://", "https://")):
                return self.store_file(b"", kind, file_name=value.rsplit("/", 1)[-1] or None)
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _media_object(self, record: FileRecord, kind: str, params: dict[str, Any]) -> Any:
        base = {"file_id": record.file_id, "file_unique_id": record.file_unique_id, "file_size": len(record.data)}
        if kind == "photo":
            small_id = record.file_id + "s"
            small = {**base, "file_id": small_id, "width": 90, "height": 67}
            self.files.setdefault(small_id, record)
            return [small, {**base, "width": 800, "height": 600}]
        obj = dict(base)
        if record.mime_type:
            obj["mime_type"] = record.mime_type
        if kind in {"document", "audio", "video", "animation"} and record.file_name:
            obj["file_name"] = record.file_name
        if kind in {"voice", "audio", "video", "animation", "video_note"}:
            obj["duration"] = int(params.get("duration") or 1)
        if kind in {"video", "animation"}:
            obj.update(width=int(params.get("width") or 640), height=int(params.get("height") or 480))
        if kind == "video_note":
            obj["length"] = int(params.get("length") or 240)
        if kind == "sticker":
            obj.update(type="regular", width=512, height=512, is_animated=False, is_video=False)
            if params.get("emoji"):
                obj["emoji"] = params["emoji"]
        return obj

    async def _get_file(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        record = self.files.get(params["file_id"])
        if record is None:
            raise bad_request("invalid file_id")
        result = record.to_file()
        result["file_id"] = params["file_id"]
        return result
