"""Template helpers for repricing pages: `{{ decision.reason|reason_label }}`."""

from __future__ import annotations

from django import template

from repricing import display

register = template.Library()


@register.filter
def reason_label(code: str) -> str:
    return display.reason_label(code or "")
