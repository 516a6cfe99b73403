"""Chaos Toolkit tolerances judged with mlchaos's statistics: on the interval, never the point.

``error_rate_within`` takes what ``send_requests`` answered (Chaos Toolkit passes it as
``value``, which therefore has a default: Chaos Toolkit checks an experiment's arguments against
the function before it runs it): with ``relative_to`` it judges the difference of two arms'
error rates (Newcombe's interval), else one arm's rate (Wilson's). It holds only when the
interval's upper bound is at most ``max`` — a few lucky requests cannot pass a bound their number
cannot support — and logs the estimate with its interval either way.
"""

import logging

__all__ = ["error_rate_within"]

logger = logging.getLogger("chaostoolkit")  # shown with Chaos Toolkit's own output


def error_rate_within(
    max: float,  # the bound, named as in mlchaos experiment files (shadows the builtin)
    value: dict[str, dict[str, int]] | None = None,
    arm: str = "experiment",
    relative_to: str = "",
    confidence: float = 0.95,
) -> bool:
    """``arm``'s error rate (minus ``relative_to``'s, when given) is at most ``max`` (a
    fraction: 0.01 is 1 point) on its whole ``confidence`` interval."""
    from mlchaos.stats import proportion, proportion_difference  # noqa: PLC0415

    if value is None:  # a default only so that Chaos Toolkit's validation passes
        raise ValueError("no measurement: use this as the tolerance of send_requests")
    a = value[arm]
    if relative_to:
        b = value[relative_to]
        est = proportion_difference(
            a["errors"], a["requests"], b["errors"], b["requests"], confidence
        )
        what = f"{arm} error rate minus {relative_to}'s"
    else:
        est = proportion(a["errors"], a["requests"], confidence)
        what = f"{arm} error rate"
    holds = bool(est.high <= max)
    logger.info(
        "%s: %.2f%% [%.2f%%, %.2f%%] (n=%d, %.0f%%) against at most %.2f%%: %s",
        what,
        est.value * 100,
        est.low * 100,
        est.high * 100,
        est.n,
        confidence * 100,
        max * 100,
        "holds" if holds else "does not hold",
    )
    return holds
