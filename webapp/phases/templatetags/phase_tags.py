"""Template filters of the sweep result page."""

from django import template

from webapp.phases.selectors import sweep_phase_rule

register = template.Library()


@register.filter
def phase_rule(params: dict) -> str:
    """The rule ("grokking" or "taxonomy") the sweep's diagram opens coloured by."""
    return sweep_phase_rule(params or {})
