"""The numbers of a finished result as CSV (one row per evaluated point)."""

import csv
import io


def as_csv(header: list[str], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def blank(value):
    return "" if value is None else repr(value) if isinstance(value, float) else value


def landscape_csv(result: dict) -> str:
    if result.get("mode") == "line":
        accuracy = result.get("accuracy") or [None] * len(result["t"])
        return as_csv(["k", "t", "loss", "accuracy"], ([k, blank(t), blank(l), blank(a)] for k, (t, l, a) in enumerate(zip(result["t"], result["loss"], accuracy))))
    accuracy = result.get("accuracy")

    def rows():
        for i, a in enumerate(result["a"]):
            for j, b in enumerate(result["b"]):
                if result["computed"][i][j]:
                    acc = accuracy[i][j] if accuracy else None
                    yield [i, j, blank(a), blank(b), blank(result["loss"][i][j]), blank(acc)]

    return as_csv(["i", "j", "a", "b", "loss", "accuracy"], rows())


def hessian_csv(result: dict) -> str:
    from webapp.landscapes.results import HessianResult

    spectrum = HessianResult.model_validate(result)
    eig = spectrum.eigenvalues
    rows = [["eigenvalue", k + 1, blank(v), blank(r)] for k, (v, r) in enumerate(zip(eig.values, eig.residuals))]
    if spectrum.trace:
        rows.append(["trace", "", blank(spectrum.trace.estimate), blank(spectrum.trace.stderr)])
    if spectrum.density:
        rows += [["density", k, blank(x), blank(d)] for k, (x, d) in enumerate(zip(spectrum.density.grid, spectrum.density.density))]
    return as_csv(["quantity", "index", "value", "error_or_density"], rows)


def connectivity_csv(result: dict) -> str:
    rows = []
    for label, curve in result["curves"].items():
        accuracy = curve.get("accuracy") or [None] * len(curve["t"])
        rows += [[label, blank(t), blank(l), blank(a)] for t, l, a in zip(curve["t"], curve["loss"], accuracy)]
    return as_csv(["path", "t", "loss", "accuracy"], rows)
