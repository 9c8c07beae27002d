"""Messages in, one answer per request: the checks pygls leaves out, on its protocol class.

pygls decodes a message inside `json.loads` and drops it when decoding fails: a request whose
params do not fit the method's schema gets no response at all, and the failure pops up in the
editor. Here every message is checked before pygls dispatches it:

- not JSON, not an object, no method, a bad id: an error response with id null (JSON-RPC);
- params that do not fit the schema: InvalidParams (-32602) naming the field, for a request;
  a notification with bad params is logged and dropped;
- before `initialize`: ServerNotInitialized (-32002); after `shutdown`: InvalidRequest;
- a notification method sent with an id: InvalidRequest (it would otherwise get no answer);
- a handler that fails: its JSON-RPC error as raised, or, for a bug, InternalError with a plain
  message (the traceback goes to the log, never to the client);
- an answer that cannot be encoded: InternalError instead of silence.

Problems are logged on stderr (the client's output channel), never shown as a popup.
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import Future
from typing import Any

import attrs
import cattrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcRequestCancelled,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    MsgId,
)

from memlens.files import reason
from memlens.lsp import transport

logger = logging.getLogger("memlens.lsp")

INTERNAL_ERROR = "memlens: internal error; the details are in the memlens server log"


def _camel(path: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)


def _field_problem(line: str) -> str:
    """One line of cattrs' error summary, in the protocol's own field names."""
    text, _, path = line.rpartition(" @ ")
    field = _camel(path).removeprefix("$.params").removeprefix(".") or "params"
    if text == "required field missing":
        return f"{field} is missing"
    expected = text.removeprefix("invalid value for type, expected ")
    if expected != text and expected not in ("Optional", "Union"):
        return f"{field} must be {expected}"
    return f"{field} has a wrong value"


def schema_problem(error: BaseException) -> str:
    """What in the params does not fit the method's schema."""
    if isinstance(error, cattrs.BaseValidationError):
        found = [_field_problem(line) for line in cattrs.transform_error(error)]
        return "; ".join(found[:3]) + ("; …" if len(found) > 3 else "")
    return "the params do not fit the method"


class MemlensProtocol(LanguageServerProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_seen = False

    # --- in ---------------------------------------------------------------------------------

    def receive(self, message: transport.Message) -> None:
        """One framed message: checked, then handed to pygls (or refused with an answer)."""
        if message.problem is not None:
            self.refuse(None, JsonRpcParseError(message.problem))
            return
        data = message.value
        if not isinstance(data, dict):
            self.refuse(None, JsonRpcInvalidRequest("a message must be a JSON object"))
            return
        has_id, msg_id = "id" in data, data.get("id")
        if has_id and (isinstance(msg_id, bool) or not isinstance(msg_id, int | str)):
            self.refuse(None, JsonRpcInvalidRequest("the message id must be a number or a string"))
            return
        if "method" not in data and has_id:
            self.receive_response(data)
            return
        method = data.get("method")
        answer_to = msg_id if has_id else None
        if not isinstance(method, str) or data.get("jsonrpc") != "2.0":
            problem = "no method" if not isinstance(method, str) else "not JSON-RPC 2.0"
            self.refuse(answer_to, JsonRpcInvalidRequest(f"invalid message: {problem}"))
            return
        refusal = self.admission(method, has_id)
        if refusal is not None:
            if has_id:
                self.refuse(msg_id, refusal, method)
            else:
                logger.warning("memlens: %s: %s (notification dropped)", method, refusal.message)
            return
        data.setdefault("params", None)  # LSP lets a message leave out empty params
        kind = self.get_message_type(method) or (
            JsonRPCRequestMessage if has_id else JsonRPCNotification
        )
        try:
            structured = self._converter.structure(data, kind)
        except Exception as error:
            problem = f"invalid params for {method}: {schema_problem(error)}"
            if has_id:
                self.refuse(msg_id, JsonRpcInvalidParams(problem), method)
            else:
                logger.warning("memlens: %s (notification dropped)", problem)
            return
        if method == types.INITIALIZE:
            self.initialize_seen = True
        try:
            self.handle_message(structured)
        except Exception:
            logger.exception("memlens: failed to handle %s", method)
            if has_id:
                self.refuse(msg_id, JsonRpcInternalError(INTERNAL_ERROR), method)

    def admission(self, method: str, has_id: bool) -> JsonRpcException | None:
        """Why a message cannot be handled now, or None."""
        if method == types.EXIT:
            return None
        if self._shutdown:
            return JsonRpcInvalidRequest("the server is shutting down")
        if not self.initialize_seen and method != types.INITIALIZE:
            return JsonRpcServerNotInitialized("the server is not initialized yet")
        if method == types.INITIALIZE and self.initialize_seen:
            return JsonRpcInvalidRequest("the server is already initialized")
        kind = self.get_message_type(method)
        if has_id and kind is not None and "id" not in attrs.fields_dict(kind):
            return JsonRpcInvalidRequest(f"{method} is a notification: send it without an id")
        return None

    def receive_response(self, data: dict[str, Any]) -> None:
        """The client's answer to one of our requests (progress create, refreshes)."""
        try:
            kind = (
                types.ResponseErrorMessage
                if "error" in data
                else self._result_types.pop(data["id"], None) or JsonRPCResponseMessage
            )
            self.handle_message(self._converter.structure(data, kind))
        except Exception as error:
            logger.warning("memlens: a response from the client was dropped: %s", error)

    def refuse(self, msg_id: MsgId | None, error: JsonRpcException, method: str = "") -> None:
        logger.warning("memlens: %s%s", f"{method}: " if method else "", error.message)
        # A dict, not lsprotocol's ResponseErrorMessage, which would leave out `"id": null`.
        self._send_data(
            {"jsonrpc": "2.0", "id": msg_id,
             "error": {"code": error.code, "message": error.message}}
        )  # fmt: skip

    # --- out --------------------------------------------------------------------------------

    def _send_handler_result(self, future: Future[Any], *, msg_id: MsgId) -> None:
        """A handler's result or error as the one response to its request."""
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            error: JsonRpcException = JsonRpcRequestCancelled("the request was cancelled")
        elif (raised := future.exception()) is None:
            self._send_response(msg_id, result=future.result())
            return
        elif isinstance(raised, JsonRpcException):
            error = raised
            logger.warning("memlens: request %s: %s", msg_id, error.message)
        else:
            logger.error("memlens: request %s failed", msg_id, exc_info=raised)
            error = JsonRpcInternalError(INTERNAL_ERROR)
        self._send_response(msg_id, error=error.to_response_error())

    def _send_data(self, data: Any) -> None:
        """Encode and write one message; an answer that cannot be encoded becomes an error."""
        if not data or self.writer is None:
            return
        try:
            body = json.dumps(data, default=self._serialize_message)
        except Exception:
            logger.exception("memlens: an outgoing message could not be encoded")
            msg_id = getattr(data, "id", None)
            if getattr(data, "method", None) is not None or msg_id is None:
                return
            body = json.dumps(
                {"jsonrpc": "2.0", "id": msg_id,
                 "error": {"code": JsonRpcInternalError.CODE, "message": INTERNAL_ERROR}}
            )  # fmt: skip
        payload = body.encode("utf-8")
        header = f"Content-Length: {len(payload)}\r\n\r\n".encode("ascii")
        try:
            self.writer.write(header + payload)
        except OSError as error:  # the client is gone: reading will end too
            logger.warning("memlens: cannot write to the client: %s", reason(error))
