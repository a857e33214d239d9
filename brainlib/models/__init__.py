"""Models of the five papers, built by name through one registry."""
from brainlib.models._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
