"""The cost estimate: what tuning the dataset would bill, from its token estimate and the model's price."""

from __future__ import annotations

import math
from typing import Any

from shared.validation.registry import ModelSpec
from shared.validation.stats import RatioEstimate


def cost_estimate(
    spec: ModelSpec,
    total_tokens: float,
    estimate: RatioEstimate | None,
    est_units: int,
    epochs: int | None,
    method: str,
) -> dict[str, Any]:
    """The report's cost section: billable tokens for ``epochs`` (one when None), their 95% interval when
    the ratio ``estimate`` of the ``est_units`` size units measured one, and the price when one is recorded."""
    runs = epochs or 1
    billable = total_tokens * runs
    out: dict[str, Any] = {
        "model": spec.name,
        "training_tokens": round(total_tokens),
        "epochs": runs,
        "billable_tokens": round(billable),
        "method": method,
    }
    if epochs is None:
        out["epochs_note"] = "no epoch count given: figures are for one epoch; Vertex AI picks the default count"
    if estimate is not None and math.isfinite(estimate.standard_error):
        half = 1.96 * estimate.standard_error * est_units * runs
        out["billable_tokens_ci95"] = [round(max(0.0, billable - half)), round(billable + half)]
        out["uncertainty"] = (
            f"95% interval from the sample's spread (ratio estimator, n={estimate.sample_size}); "
            "media token counts are estimates unless counted by Vertex AI"
        )
    else:
        out["uncertainty"] = (
            "not measured: no exact sample count; the 4-characters-per-token rule is often off by 25% or more, "
            "more for code and non-English text"
        )
    price = spec.price_per_million_tokens_usd
    if price is None:
        out["estimated_cost_usd"] = None
        out["price_note"] = f"no confirmed tuning price is recorded for {spec.name}"
        return out
    out["price_per_million_tokens_usd"] = price
    out["price_date"] = spec.price_date
    out["price_confirmed"] = not any("price" in u for u in spec.unconfirmed)
    out["estimated_cost_usd"] = round(billable / 1e6 * price, 2)
    if "billable_tokens_ci95" in out:
        low, high = out["billable_tokens_ci95"]
        out["estimated_cost_ci95_usd"] = [round(low / 1e6 * price, 2), round(high / 1e6 * price, 2)]
    return out
