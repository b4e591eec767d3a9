"""ORM tables, one module each; importing this package registers them all on `Base.metadata`."""

from pixelfleet.models.admin_action import AdminAction
from pixelfleet.models.api_key import ApiKey
from pixelfleet.models.asset import Asset
from pixelfleet.models.credit_entry import CreditEntry
from pixelfleet.models.derivative import Derivative
from pixelfleet.models.idempotency_key import IdempotencyKey
from pixelfleet.models.orphaned_file import OrphanedFile
from pixelfleet.models.outbound_mail import OutboundMail
from pixelfleet.models.password_reset import PasswordReset
from pixelfleet.models.payment import Payment
from pixelfleet.models.payment_event import PaymentEvent
from pixelfleet.models.payment_refund import PaymentRefund
from pixelfleet.models.preset import Preset
from pixelfleet.models.refresh_token import RefreshToken
from pixelfleet.models.task import Task
from pixelfleet.models.task_output import TaskOutput
from pixelfleet.models.upload import Upload
from pixelfleet.models.user import User
from pixelfleet.models.webhook_delivery import WebhookDelivery

__all__ = [
    "AdminAction",
    "ApiKey",
    "Asset",
    "CreditEntry",
    "Derivative",
    "IdempotencyKey",
    "OrphanedFile",
    "OutboundMail",
    "PasswordReset",
    "Payment",
    "PaymentEvent",
    "PaymentRefund",
    "Preset",
    "RefreshToken",
    "Task",
    "TaskOutput",
    "Upload",
    "User",
    "WebhookDelivery",
]
