"""A finished training run as CSV: one row per metrics evaluation, then one per sharpness measurement."""

from webapp.landscapes.exports import as_csv, blank

METRIC_COLUMNS = ("step", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
SHARPNESS_COLUMNS = ("sharpness", "threshold", "preconditioned_sharpness", "trace", "trace_stderr")


def train_csv(result: dict) -> str:
    # Results stored before the history was kept have only the final metrics.
    metrics = result.get("history") or ([result["final"]] if result.get("final") else [])
    rows = [["metrics", *(blank(m.get(c)) for c in METRIC_COLUMNS), *[""] * len(SHARPNESS_COLUMNS)] for m in metrics]
    rows += [["sharpness", blank(s.get("step")), *[""] * (len(METRIC_COLUMNS) - 1), *(blank(s.get(c)) for c in SHARPNESS_COLUMNS)]
             for s in result.get("sharpness_history") or []]
    return as_csv(["row", *METRIC_COLUMNS, *SHARPNESS_COLUMNS], rows)
