"""User errors; defined in ``registry.errors`` (components raise them too), re-exported here."""
from registry.errors import Origin, RecipeError, RecipeErrors, UserError

__all__ = ["Origin", "RecipeError", "RecipeErrors", "UserError"]
