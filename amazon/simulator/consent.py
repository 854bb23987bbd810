"""Seller Central's consent page of the website authorisation workflow (``/apps/authorize/consent``), so
that connecting through Seller Central can be clicked through in demo mode and in a browser.

What Amazon does, and this page with it:

- ``GET /apps/authorize/consent?application_id=…&state=…[&version=beta][&redirect_uri=…]``: the seller,
  signed in to Seller Central, sees which application asks for access and chooses to authorise it or not.
  An unknown application, a draft application without ``version=beta``, no ``state``, or a
  ``redirect_uri`` that is not one of the application's registered OAuth redirect URIs get an error page
  and **no redirect** (OAuth never sends a browser to an address it cannot vouch for). Without
  ``redirect_uri`` the first registered one is used. A loopback redirect URI (127.0.0.1, localhost)
  matches whatever port the request names (RFC 8252 §7.3), so a development server on any port fits.
- **Authorize** (a form POST): an LWA authorisation code for the chosen seller and the application's LWA
  client (``Market.issue_authorization_code``: single use, five minutes), then a redirect to the redirect
  URI with ``state`` (as sent), ``selling_partner_id`` and ``spapi_oauth_code``, as Amazon documents
  ("Website Authorization Workflow"; ``mws_auth_token`` only for hybrid MWS apps, so never here).
- **Cancel**: a redirect to the redirect URI with ``error=access_denied``, ``error_description`` and
  ``state``, the Login with Amazon authorisation error response.

The page lists every seller account of the market to authorise as (a stand-in for "whoever is signed in
to Seller Central"). The form carries only the id of a single-use consent request the GET remembered (30
minutes, wall clock: a person is reading), not the state or redirect URI, so a forged POST cannot choose
where the code goes. Not modelled: the Log-in URI step (``amazon_callback_uri`` / ``amazon_state``) that
Amazon inserts when an application registers a log-in URI; Seller Central's own sign-in; regions (one
page serves every regional Seller Central URL).
"""

from __future__ import annotations

import html
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from .html_pages import html_page, redirect
from .market import Market, SpApplication

CONSENT_PATH = "/apps/authorize/consent"
#: How long the page's form stays good, in real seconds.
CONSENT_REQUEST_TTL = 30 * 60
#: Open consent pages remembered at most (the oldest is forgotten first).
MAX_CONSENT_REQUESTS = 1000
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class ConsentRequest:
    application: SpApplication
    state: str
    redirect_uri: str
    expires: float  # time.monotonic()


class ConsentError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def redirect_uri_allowed(application: SpApplication, uri: str) -> bool:
    """Whether `uri` is one of the application's registered OAuth redirect URIs (loopback: any port)."""
    if uri in application.redirect_uris:
        return True
    asked = urlsplit(uri)
    if asked.hostname not in LOOPBACK_HOSTS:
        return False
    for registered in application.redirect_uris:
        known = urlsplit(registered)
        if (
            known.hostname == asked.hostname
            and known.port is None
            and (known.scheme, known.path, known.query) == (asked.scheme, asked.path, asked.query)
        ):
            return True
    return False


def with_query(uri: str, params: dict[str, str]) -> str:
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{urlencode(params)}"


class ConsentPage:
    def __init__(self, market: Market) -> None:
        self.market = market
        self._requests: OrderedDict[str, ConsentRequest] = OrderedDict()

    @staticmethod
    def handles(path: str) -> bool:
        return path.rstrip("/") == CONSENT_PATH

    def dispatch(self, request: Request, log: deque[Any] | None = None) -> Response:
        from .app import LoggedRequest  # app.py imports this module

        try:
            if request.method == "GET":
                response = self.show(request)
            elif request.method == "POST":
                response = self.answer(request)
            else:
                raise ConsentError(405, "Method not allowed", "Open this page from the application.")
        except ConsentError as error:
            body = f"<h1>{html.escape(error.title)}</h1><p>{html.escape(error.message)}</p>"
            response = self._page(error.title, body, error.status)
        if log is not None:
            query = {k: v for k, v in request.args.to_dict(flat=False).items() if k != "state"}
            form = {k: v for k, v in request.form.items() if k in ("selling_partner_id", "action")}
            log.append(
                LoggedRequest(
                    "sellerCentralConsent",
                    request.method,
                    request.path,
                    query,
                    form or None,
                    response.status_code,
                )
            )
        return response

    # ------------------------------------------------------------------ GET: the page

    def show(self, request: Request) -> Response:
        application_id = request.args.get("application_id", "")
        application = self.market.applications.get(application_id)
        if application is None:
            raise ConsentError(
                404,
                "Application not found",
                "The application you are trying to authorize does not exist or is no longer available.",
            )
        if application.draft and request.args.get("version") != "beta":
            raise ConsentError(
                400,
                "Application not available",
                f"{application.name} is in draft. Draft applications can only be authorized with "
                "version=beta.",
            )
        state = request.args.get("state", "")
        if not state:
            raise ConsentError(400, "Missing state", "The authorization request has no state parameter.")
        redirect_uri = request.args.get("redirect_uri") or application.redirect_uris[0]
        if not redirect_uri_allowed(application, redirect_uri):
            raise ConsentError(
                400,
                "Redirect URI not registered",
                "The redirect_uri is not one of the OAuth redirect URIs registered for this application.",
            )
        with self.market.lock:
            sellers = list(self.market.sellers.values())
            consent_id = secrets.token_urlsafe(24)
            now = time.monotonic()
            for key in [k for k, r in self._requests.items() if r.expires <= now]:
                del self._requests[key]
            while len(self._requests) >= MAX_CONSENT_REQUESTS:
                self._requests.popitem(last=False)
            self._requests[consent_id] = ConsentRequest(
                application, state, redirect_uri, now + CONSENT_REQUEST_TTL
            )
        name = html.escape(application.name)
        choices = "".join(
            f'<label class="seller"><input type="radio" name="selling_partner_id" '
            f'value="{html.escape(seller.selling_partner_id)}"{" checked" if index == 0 else ""}> '
            f"<strong>{html.escape(seller.store_name)}</strong> "
            f"<code>{html.escape(seller.selling_partner_id)}</code> "
            f"<span class=muted>{html.escape(', '.join(seller.marketplace_ids))}</span></label>"
            for index, seller in enumerate(sellers)
        )
        if not sellers:
            choices = "<p>There is no seller account in this simulated Seller Central.</p>"
        disabled = "" if sellers else " disabled"
        body = f"""
<p class=muted>Amazon Seller Central (simulator)</p>
<h1>Authorize {name}</h1>
<p><strong>{name}</strong> asks for access to your Selling Partner API data: listings, pricing,
inventory, orders and financial events. You can revoke it at any time in Seller Central under
Apps and Services → Manage Your Apps.</p>
<form method="post" action="{CONSENT_PATH}">
  <input type="hidden" name="consent_request" value="{consent_id}">
  <fieldset><legend>Authorize as</legend>{choices}</fieldset>
  <p><button type="submit" name="action" value="authorize"{disabled}>Authorize</button>
     <button type="submit" name="action" value="cancel" class=secondary>Cancel</button></p>
</form>"""
        return self._page(f"Authorize {application.name}", body, 200)

    # ------------------------------------------------------------------ POST: the seller's answer

    def answer(self, request: Request) -> Response:
        consent_id = request.form.get("consent_request", "")
        with self.market.lock:
            pending = self._requests.pop(consent_id, None)
        if pending is None or pending.expires <= time.monotonic():
            raise ConsentError(
                400,
                "This page has expired",
                "Go back to the application and start the authorization again.",
            )
        if request.form.get("action") == "cancel":
            return self._redirect(
                with_query(
                    pending.redirect_uri,
                    {
                        "error": "access_denied",
                        "error_description": "The seller did not authorize the application.",
                        "state": pending.state,
                    },
                )
            )
        if request.form.get("action") != "authorize":
            raise ConsentError(400, "Unknown answer", "Choose Authorize or Cancel.")
        seller_id = request.form.get("selling_partner_id", "")
        try:
            code = self.market.issue_authorization_code(seller_id, pending.application.client_id)
        except KeyError:
            raise ConsentError(
                400, "Unknown seller account", "Choose one of the seller accounts listed."
            ) from None
        return self._redirect(
            with_query(
                pending.redirect_uri,
                {"state": pending.state, "selling_partner_id": seller_id, "spapi_oauth_code": code},
            )
        )

    # ------------------------------------------------------------------ plumbing

    _redirect = staticmethod(redirect)
    _page = staticmethod(html_page)
