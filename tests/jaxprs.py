"""Helpers for tests that read jaxprs (imported by the test modules; pytest puts this folder on the path)."""

from __future__ import annotations


def eqns(jaxpr):
    """Every equation of a jaxpr, those of nested jaxprs (jit, custom derivatives, loops) included."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else [value]:
                sub = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr's Jaxpr
                if hasattr(sub, "eqns"):
                    yield from eqns(sub)
