"""``AttributionSpec``: a component's param that names a registered attribution and its params
(``{name, params}``, or just the name), checked against that attribution's Params and written out
in full.  Used by ``attribution_variance``, ``rationale_agreement`` and ``rationale_margin``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, model_validator

import registry
from registry import StrictParams
from registry.errors import UserError

if TYPE_CHECKING:
    from registry.base import Attribution


class AttributionSpec(StrictParams):
    """A registered ``attributions`` component and its params (``{name, params}``, or just the name)."""

    name: str = Field("integrated_gradients", description="a registered attribution (`recipe-engine ls attributions`)")
    params: dict[str, Any] = Field(default_factory=dict, description="that attribution's params")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """``attribution: saliency`` means ``{name: saliency}``."""
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _registered(self) -> "AttributionSpec":
        """The name is registered and the params are its Params (written out in full)."""
        reg = registry.load_all()
        if not reg.has("attributions", self.name):
            raise ValueError(reg.unknown_message("attributions", self.name))
        try:
            params = reg.get("attributions", self.name).Params.model_validate(self.params)
        except ValidationError as exc:
            problems = "; ".join(f"params.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
            raise ValueError(f"attribution {self.name!r}: {problems} (`recipe-engine explain {self.name}` lists its params)") from None
        self.params = params.model_dump(mode="json")
        return self

    def build(self, owner: str | None = None) -> Attribution:
        """The attribution component with these params; ``owner`` (e.g. "metric
        attribution_variance") names who asked when the name is not registered."""
        if owner is not None:
            reg = registry.load_all()
            if not reg.has("attributions", self.name):
                raise UserError(f"{owner}: {reg.unknown_message('attributions', self.name)}; "
                                "set params.attribution in evaluation.metrics")
        return registry.build("attributions", self.name, self.params)
