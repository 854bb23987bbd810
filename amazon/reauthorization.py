"""Telling the seller that Amazon refused a connection's grant (Seller Central or Ads).

The dashboard shows the status at once; this also emails the members who may connect Amazon (owners
and admins), once per refusal: the mark is written once (amazon/services.py), and the email is sent
after that write commits. No secret, token or Amazon answer body is in the message."""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from accounts.models import Membership
from accounts.roles import ROLE_PERMISSIONS, Permission
from amazon.models import SellerConnection

logger = logging.getLogger(__name__)

WHAT = {"sp_api": "Seller Central (Selling Partner API)", "ads": "Amazon Ads"}


def reauthorization_recipients(tenant_id: int) -> list[str]:
    """Active members allowed to connect Amazon who did not turn account notifications off."""
    roles = [role for role, allowed in ROLE_PERMISSIONS.items() if Permission.CONNECT_AMAZON in allowed]
    members = Membership.objects.filter(tenant_id=tenant_id, role__in=roles, user__is_active=True)
    return sorted(
        m.user.email
        for m in members.select_related("user")
        if m.user.notification_preferences.get("account_notifications", True)
    )


def reauthorization_notice_on_commit(connection: SellerConnection, kind: str) -> None:
    """Email the seller after the current transaction commits (nothing if it rolls back)."""
    tenant_id, name, public_id = connection.tenant_id, str(connection), connection.public_id
    transaction.on_commit(lambda: _send(tenant_id, name, public_id, kind))


def _send(tenant_id: int, name: str, public_id: object, kind: str) -> None:
    recipients = reauthorization_recipients(tenant_id)
    if not recipients:
        return
    page = reverse("amazon:connection_ads" if kind == "ads" else "amazon:connection_detail", args=[public_id])
    subject = f"Action needed: re-authorise {WHAT[kind]} for {name}"
    body = (
        f"Amazon no longer accepts SellerPilot's authorisation for {WHAT[kind]} on the account {name}.\n"
        "Until you authorise it again, the work that needs it (syncs, repricing, advertising) is paused for "
        "this account.\n\n"
        f"Open the connection in your dashboard to authorise it again: {page}\n\n"
        "You get this because account notifications are on in your notification preferences.\n"
    )
    try:
        send_mail(subject=subject, message=body, from_email=None, recipient_list=recipients)
    except Exception:  # the status is recorded and shown; a mail server hiccup must not fail the caller
        logger.exception("amazon: could not send the re-authorisation email for tenant %s", tenant_id)
