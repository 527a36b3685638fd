"""Every metric of a finished sweep as CSV: one row per cell (means, stds, labels) and per run."""

import csv
import io


def _flat(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}.{key}" if prefix else key, inner, out)
    elif isinstance(value, (list, tuple)):
        if all(not isinstance(v, (dict, list)) for v in value):
            out[prefix] = ";".join("" if v is None else str(v) for v in value)
    else:
        out[prefix] = value


def sweep_csv(result: dict) -> str:
    rows = []
    for cell in result.get("cells", []):
        row = {"row": "cell", "x": result["x"]["values"][cell["i"]], "y": result["y"]["values"][cell["j"]]}
        _flat("", cell, row)
        rows.append(row)
    for run in result.get("runs", []):
        row = {"row": "run", "x": result["x"]["values"][run["i"]], "y": result["y"]["values"][run["j"]]}
        _flat("", run, row)
        rows.append(row)
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
