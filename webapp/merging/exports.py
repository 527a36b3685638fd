"""A finished merge's sweep as CSV: one row per knob value and task."""

import csv
import io


def merge_csv(result: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([result["knob"], "task", "loss", "accuracy"])
    for point in result["sweep"]["points"]:
        for task, values in point["results"].items():
            writer.writerow([repr(point["value"]), task, values["loss"], "" if values["accuracy"] is None else values["accuracy"]])
    return out.getvalue()
