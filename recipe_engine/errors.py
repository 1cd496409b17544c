"""User errors; defined in ``registry.errors`` (components raise them too), re-exported here."""
from registry.errors import DataUnavailable, Origin, RecipeError, RecipeErrors, UserError

__all__ = ["DataUnavailable", "Origin", "RecipeError", "RecipeErrors", "UserError"]
