"""Dashboard forms for connecting Amazon accounts: they parse input; amazon/services.py does the work."""

from __future__ import annotations

from django import forms

from accounts.forms import NoColonLabels
from amazon.models import Listing, Order, Region

_SECRET_ATTRS = {"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}


class ConsentStartForm(NoColonLabels, forms.Form):
    region = forms.ChoiceField(
        choices=Region.choices,
        initial=Region.NA,
        help_text="Where the Seller Central account sells: North America (US, CA, MX, BR), Europe (UK, DE, "
        "FR, IT, ES, …) or Far East (JP, AU, SG).",
    )


class OwnAppForm(NoColonLabels, forms.Form):
    """A seller's own developer app. The secret inputs never render their value back."""

    name = forms.CharField(
        label="Label (optional)", required=False, max_length=200, help_text="E.g. “Main US account”."
    )
    region = forms.ChoiceField(choices=Region.choices, initial=Region.NA)
    selling_partner_id = forms.CharField(
        label="Selling partner id",
        max_length=64,
        help_text="Seller Central → Settings → Account Info → Merchant Token.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    lwa_client_id = forms.CharField(
        label="LWA client id",
        max_length=300,
        widget=forms.PasswordInput(attrs=_SECRET_ATTRS),
        help_text="Developer Central → your app → LWA credentials.",
    )
    lwa_client_secret = forms.CharField(
        label="LWA client secret", max_length=300, widget=forms.PasswordInput(attrs=_SECRET_ATTRS)
    )
    refresh_token = forms.CharField(
        label="Refresh token",
        max_length=2000,
        widget=forms.PasswordInput(attrs=_SECRET_ATTRS),
        help_text="From authorising your app for this seller account (self-authorisation).",
    )


class ListingFilterForm(NoColonLabels, forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200, help_text="SKU, ASIN or title.")
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "All statuses"), *Listing.Status.choices]
    )


class OrderFilterForm(NoColonLabels, forms.Form):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "All statuses"), *Order.Status.choices]
    )
