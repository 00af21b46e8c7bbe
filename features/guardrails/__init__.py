"""Guardrails: checks on both sides of the model (rules layer always on, optional model check)."""
