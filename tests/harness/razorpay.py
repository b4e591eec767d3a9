"""A fake Razorpay on a free loopback port: a real HTTP server that speaks the parts of Razorpay's
REST API PixelFleet uses (orders, payments, refunds) to the official `razorpay` client, and signs
checkouts and webhooks as Razorpay does. Tests drive the customer's side with Python helpers
(`pay`, `fail`, `capture`, `refund`) and build the webhooks Razorpay would send (`webhook`).

    with FakeRazorpay() as fake:
        client = razorpay.Client(auth=(fake.key_id, fake.key_secret), base_url=fake.base_url)
        order = client.order.create({"amount": 49900, "currency": "INR"})
        payment = fake.pay(order["id"])
        body, headers = fake.webhook("payment.captured", payment=payment)

Every request must carry HTTP Basic auth `key_id:key_secret`. Errors come back in Razorpay's shape
(`{"error": {"code", "description", "source", "step", "reason", "metadata", ...}}`), so the official
client raises `BadRequestError` for 4xx answers (401 included) and `ServerError` for 5xx ones.
`fail_next` and `delay_seconds` simulate an outage or a slow Razorpay."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

Entity = dict[str, Any]
PaymentMethod = Literal["card", "upi", "netbanking", "wallet"]

_ALPHANUMERIC = string.ascii_letters + string.digits
_ORDER_FIELDS = frozenset(
    {
        "amount",
        "currency",
        "receipt",
        "notes",
        "partial_payment",
        "first_payment_min_amount",
        "payment_capture",
    }
)
_SERVER_ERROR_DESCRIPTION = (
    "The server encountered an error. The incident has been reported to admins."
)


def razorpay_id(prefix: str) -> str:
    """An id as Razorpay makes them: `prefix_` and 14 alphanumerics (`order_`, `pay_`, ...)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(14))


def _secret(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def hmac_sha256_hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def error_body(
    code: str,
    description: str,
    *,
    source: str = "NA",
    step: str = "NA",
    reason: str = "NA",
    field: str | None = None,
) -> Entity:
    """Razorpay's error body; `razorpay.Client` reads `error.code` and `error.description`."""
    error: Entity = {
        "code": code,
        "description": description,
        "source": source,
        "step": step,
        "reason": reason,
        "metadata": {},
    }
    if field is not None:
        error["field"] = field
    return {"error": error}


class _ApiError(Exception):
    def __init__(self, status: int, body: Entity) -> None:
        super().__init__(body["error"]["description"])
        self.status = status
        self.body = body


def _bad_request(description: str, *, field: str | None = None) -> _ApiError:
    return _ApiError(
        400,
        error_body(
            "BAD_REQUEST_ERROR",
            description,
            source="business",
            step="payment_initiation",
            reason="input_validation_failed",
            field=field,
        ),
    )


def _not_found() -> _ApiError:
    return _bad_request("The id provided does not exist")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    json: Any  # the parsed body, None when there is none or it is not JSON


@dataclass(frozen=True)
class _Failure:
    status: int
    body: bytes
    content_type: str


class FakeRazorpay:
    def __init__(
        self,
        *,
        key_id: str | None = None,
        key_secret: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        self.key_id = key_id or f"rzp_test_{_secret(14)}"
        self.key_secret = key_secret or _secret(24)
        self.webhook_secret = webhook_secret or _secret(32)
        self.account_id = razorpay_id("acc")
        self.requests: list[RecordedRequest] = []
        self.delay_seconds = 0.0  # every answer waits this long (a slow Razorpay)
        self._orders: dict[str, Entity] = {}
        self._payments: dict[str, Entity] = {}
        self._refunds: dict[str, Entity] = {}
        self._failures: deque[_Failure] = deque()
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What `razorpay.Client(base_url=...)` takes (no `/v1`: the client adds it)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeRazorpay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeRazorpay:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self, *, key_secret: str | None = None) -> Any:
        """The official client pointed at this fake (`key_secret` to try a wrong one)."""
        import razorpay

        return razorpay.Client(
            auth=(self.key_id, self.key_secret if key_secret is None else key_secret),
            base_url=self.base_url,
        )

    # -- outages -----------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        code: str | None = None,
        description: str | None = None,
        raw_body: bytes | None = None,
    ) -> None:
        """Answers the next `times` requests with `status` before looking at them (no auth check,
        no state change). The body is Razorpay's error body (code `SERVER_ERROR` for 5xx,
        `BAD_REQUEST_ERROR` otherwise) unless `raw_body` is given, e.g. the HTML page a load
        balancer sends, on which the official client raises `requests.JSONDecodeError`."""
        if raw_body is not None:
            failure = _Failure(status, raw_body, "text/html")
        else:
            default_code = "SERVER_ERROR" if status >= 500 else "BAD_REQUEST_ERROR"
            body = error_body(
                code or default_code,
                description or (_SERVER_ERROR_DESCRIPTION if status >= 500 else "Bad request"),
            )
            failure = _Failure(status, json.dumps(body).encode(), "application/json")
        with self._lock:
            self._failures.extend(failure for _ in range(times))

    # -- state as tests see it ---------------------------------------------------------------

    def order(self, order_id: str) -> Entity:
        with self._lock:
            return copy.deepcopy(self._order(order_id))

    def payment(self, payment_id: str) -> Entity:
        with self._lock:
            return copy.deepcopy(self._payment(payment_id))

    def refund_entity(self, refund_id: str) -> Entity:
        with self._lock:
            return copy.deepcopy(self._refunds[refund_id])

    def payments_of(self, order_id: str) -> list[Entity]:
        with self._lock:
            self._order(order_id)
            return [copy.deepcopy(p) for p in self._payments.values() if p["order_id"] == order_id]

    def create_order(self, data: Entity) -> Entity:
        """What `POST /v1/orders` does, without HTTP (raises `ValueError` on invalid data)."""
        try:
            return self._create_order(data)
        except _ApiError as error:
            raise ValueError(str(error)) from None

    # -- the customer's side -----------------------------------------------------------------

    def pay(
        self,
        order_id: str,
        *,
        amount: int | None = None,
        status: Literal["created", "authorized", "captured"] = "captured",
        method: PaymentMethod = "card",
    ) -> Entity:
        """A payment for the order, as checkout makes it. `amount` defaults to the order's
        `amount_due`; another amount simulates a mismatch. The order counts the attempt; a
        captured payment adds to its `amount_paid`, and the order is `paid` once that reaches its
        amount (else `attempted`)."""
        if status not in ("created", "authorized", "captured"):
            raise ValueError(f"pay() makes created/authorized/captured payments, not {status!r}")
        with self._lock:
            order = self._order(order_id)
            payment = self._new_payment(
                order, order["amount_due"] if amount is None else amount, method
            )
            payment["status"] = status
            order["attempts"] += 1
            self._payments[payment["id"]] = payment
            if status == "captured":
                self._mark_captured(payment)
            self._settle(order)
            return copy.deepcopy(payment)

    def fail(
        self,
        order_id: str,
        *,
        code: str = "BAD_REQUEST_ERROR",
        description: str = "Payment failed",
        reason: str = "payment_failed",
        amount: int | None = None,
        method: PaymentMethod = "card",
    ) -> Entity:
        """A failed payment attempt on the order (the order becomes `attempted`)."""
        with self._lock:
            order = self._order(order_id)
            payment = self._new_payment(
                order, order["amount_due"] if amount is None else amount, method
            )
            payment.update(
                status="failed",
                error_code=code,
                error_description=description,
                error_source="customer",
                error_step="payment_authentication",
                error_reason=reason,
            )
            order["attempts"] += 1
            self._payments[payment["id"]] = payment
            self._settle(order)
            return copy.deepcopy(payment)

    def capture(self, payment_id: str) -> Entity:
        """Captures an authorized payment (what auto-capture or `payment.capture` does)."""
        with self._lock:
            payment = self._payment(payment_id)
            if payment["status"] != "authorized":
                raise ValueError(f"{payment_id} is {payment['status']}, not authorized")
            payment["status"] = "captured"
            self._mark_captured(payment)
            self._settle(self._order(payment["order_id"]))
            return copy.deepcopy(payment)

    def refund(self, payment_id: str, *, amount: int | None = None) -> Entity:
        """A processed refund of a captured payment (`amount` defaults to what is left). The
        payment's `amount_refunded` grows, `refund_status` becomes `partial` or `full`, and its
        `status` becomes `refunded` when nothing is left. Raises `ValueError` as Razorpay would
        refuse (not captured, more than is left)."""
        try:
            return self._refund(payment_id, amount)
        except _ApiError as error:
            raise ValueError(str(error)) from None

    # -- signatures --------------------------------------------------------------------------

    def checkout_signature(self, order_id: str, payment_id: str) -> str:
        """`razorpay_signature` as checkout hands it to the browser."""
        return hmac_sha256_hex(self.key_secret, f"{order_id}|{payment_id}".encode())

    def sign_webhook(self, body: bytes) -> str:
        return hmac_sha256_hex(self.webhook_secret, body)

    def webhook(
        self,
        event: str,
        *,
        payment: Entity | None = None,
        order: Entity | None = None,
        refund: Entity | None = None,
        event_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The raw body Razorpay would POST for `event` (with only the entities given, as the
        snapshots passed in) and its headers: `Content-Type`, `X-Razorpay-Signature` and
        `x-razorpay-event-id` (a fresh `evt_...` unless `event_id` is given, e.g. for a
        redelivery)."""
        entities = {"payment": payment, "order": order, "refund": refund}
        names = ["refund", "payment", "order"] if event.startswith("refund.") else list(entities)
        contains = [name for name in names if entities[name] is not None]
        document = {
            "entity": "event",
            "account_id": self.account_id,
            "event": event,
            "contains": contains,
            "payload": {name: {"entity": copy.deepcopy(entities[name])} for name in contains},
            "created_at": int(time.time()),
        }
        body = json.dumps(document, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": self.sign_webhook(body),
            "x-razorpay-event-id": event_id or razorpay_id("evt"),
        }
        return body, headers

    # -- internals (callers hold the lock) ---------------------------------------------------

    def _order(self, order_id: str) -> Entity:
        try:
            return self._orders[order_id]
        except KeyError:
            raise KeyError(f"no order {order_id}") from None

    def _payment(self, payment_id: str) -> Entity:
        try:
            return self._payments[payment_id]
        except KeyError:
            raise KeyError(f"no payment {payment_id}") from None

    def _create_order(self, data: Any) -> Entity:
        if not isinstance(data, dict):
            raise _bad_request("The request body must be a JSON object")
        for key in data:
            if key not in _ORDER_FIELDS:
                raise _bad_request(f"{key} is/are not required and should not be sent", field=key)
        amount = data.get("amount")
        if amount is None:
            raise _bad_request("The amount field is required.", field="amount")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise _bad_request("The amount must be an integer.", field="amount")
        if amount < 100:
            raise _bad_request("The amount must be atleast INR 1.00", field="amount")
        currency = data.get("currency")
        if currency is None:
            raise _bad_request("The currency field is required.", field="currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise _bad_request("The currency must be 3 characters.", field="currency")
        receipt = data.get("receipt")
        if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
            raise _bad_request(
                "The receipt may not be greater than 40 characters.", field="receipt"
            )
        notes = data.get("notes")
        if notes is not None and not isinstance(notes, dict):
            raise _bad_request("The notes must be an array.", field="notes")
        if notes and len(notes) > 15:
            raise _bad_request(
                "Number of fields in notes should be less than or equal to 15", field="notes"
            )
        partial_payment = data.get("partial_payment", False)
        if not isinstance(partial_payment, bool):
            raise _bad_request("The partial payment field must be true or false.")
        order: Entity = {
            "id": razorpay_id("order"),
            "entity": "order",
            "amount": amount,
            "amount_paid": 0,
            "amount_due": amount,
            "currency": currency,
            "receipt": receipt,
            "offer_id": None,
            "status": "created",
            "attempts": 0,
            "notes": dict(notes) if notes else [],
            "created_at": int(time.time()),
        }
        with self._lock:
            self._orders[order["id"]] = order
            return copy.deepcopy(order)

    def _new_payment(self, order: Entity, amount: int, method: PaymentMethod) -> Entity:
        return {
            "id": razorpay_id("pay"),
            "entity": "payment",
            "amount": amount,
            "currency": order["currency"],
            "status": "created",
            "order_id": order["id"],
            "invoice_id": None,
            "international": False,
            "method": method,
            "amount_refunded": 0,
            "refund_status": None,
            "captured": False,
            "description": None,
            "card_id": razorpay_id("card") if method == "card" else None,
            "bank": "HDFC" if method == "netbanking" else None,
            "wallet": "paytm" if method == "wallet" else None,
            "vpa": "gaurav.kumar@exampleupi" if method == "upi" else None,
            "email": "gaurav.kumar@example.com",
            "contact": "+919000090000",
            "notes": copy.deepcopy(order["notes"]),
            "fee": None,
            "tax": None,
            "error_code": None,
            "error_description": None,
            "error_source": None,
            "error_step": None,
            "error_reason": None,
            "created_at": int(time.time()),
        }

    @staticmethod
    def _mark_captured(payment: Entity) -> None:
        tax = payment["amount"] * 2 // 100 * 18 // 100
        payment.update(captured=True, fee=payment["amount"] * 2 // 100 + tax, tax=tax)

    def _settle(self, order: Entity) -> None:
        paid = sum(
            p["amount"]
            for p in self._payments.values()
            if p["order_id"] == order["id"] and p["captured"]
        )
        order["amount_paid"] = paid
        order["amount_due"] = max(order["amount"] - paid, 0)
        if paid >= order["amount"]:
            order["status"] = "paid"
        elif order["attempts"]:
            order["status"] = "attempted"

    def _refund(self, payment_id: str, amount: Any) -> Entity:
        with self._lock:
            payment = self._payments.get(payment_id)
            if payment is None:
                raise _not_found()
            if not payment["captured"]:
                raise _bad_request(
                    "The payment has not been captured, only captured payments can be refunded"
                )
            left = payment["amount"] - payment["amount_refunded"]
            if left <= 0:
                raise _bad_request("The payment has been fully refunded already")
            if amount is None:
                amount = left
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 100:
                raise _bad_request("The amount must be an integer of at least 100.", field="amount")
            if amount > left:
                raise _bad_request(
                    "The refund amount provided is greater than amount captured", field="amount"
                )
            refund: Entity = {
                "id": razorpay_id("rfnd"),
                "entity": "refund",
                "amount": amount,
                "currency": payment["currency"],
                "payment_id": payment_id,
                "notes": [],
                "receipt": None,
                "acquirer_data": {"arn": None},
                "created_at": int(time.time()),
                "batch_id": None,
                "status": "processed",
                "speed_processed": "normal",
                "speed_requested": "normal",
            }
            self._refunds[refund["id"]] = refund
            payment["amount_refunded"] += amount
            full = payment["amount_refunded"] >= payment["amount"]
            payment["refund_status"] = "full" if full else "partial"
            if full:
                payment["status"] = "refunded"
            return copy.deepcopy(refund)

    # -- HTTP --------------------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.key_id}:{self.key_secret}".encode()).decode()
        return header is not None and hmac.compare_digest(header, f"Basic {expected}")

    def _route(self, method: str, path: str, body: Any) -> Entity:
        parts = [unquote(part) for part in path.strip("/").split("/")]
        with self._lock:
            match method, parts:
                case "POST", ["v1", "orders"]:
                    return self._create_order(body)
                case "GET", ["v1", "orders", order_id]:
                    if order_id not in self._orders:
                        raise _not_found()
                    return copy.deepcopy(self._orders[order_id])
                case "GET", ["v1", "orders", order_id, "payments"]:
                    if order_id not in self._orders:
                        raise _not_found()
                    items = self.payments_of(order_id)
                    return {"entity": "collection", "count": len(items), "items": items}
                case "GET", ["v1", "payments", payment_id]:
                    if payment_id not in self._payments:
                        raise _not_found()
                    return copy.deepcopy(self._payments[payment_id])
                case "POST", ["v1", "payments", payment_id, "refund"]:
                    amount = body.get("amount") if isinstance(body, dict) else None
                    return self._refund(payment_id, amount)
                case "GET", ["v1", "refunds", refund_id]:
                    if refund_id not in self._refunds:
                        raise _not_found()
                    return copy.deepcopy(self._refunds[refund_id])
        raise _ApiError(
            400,
            error_body("BAD_REQUEST_ERROR", "The requested URL was not found on the server."),
        )

    def _answer(self, request: RecordedRequest) -> tuple[int, bytes, str]:
        with self._lock:
            self.requests.append(request)
            failure = self._failures.popleft() if self._failures else None
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if failure is not None:
            return failure.status, failure.body, failure.content_type
        try:
            if not self._authorized(request.headers.get("authorization")):
                raise _ApiError(401, error_body("BAD_REQUEST_ERROR", "Authentication failed"))
            if request.body and request.json is None:
                raise _bad_request("The request body is not valid JSON")
            status, document = 200, self._route(request.method, request.path, request.json)
        except _ApiError as error:
            status, document = error.status, error.body
        return status, json.dumps(document).encode(), "application/json; charset=UTF-8"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                split = urlsplit(self.path)
                request = RecordedRequest(
                    method=self.command,
                    path=split.path,
                    query=split.query,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                    json=parsed,
                )
                status, reply, content_type = fake._answer(request)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout against `delay_seconds`)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
