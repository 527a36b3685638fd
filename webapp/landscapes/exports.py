"""The numbers of a finished result as CSV (one row per evaluated point)."""

import csv
import io


def _csv(header: list[str], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _blank(value):
    return "" if value is None else repr(value) if isinstance(value, float) else value


def landscape_csv(result: dict) -> str:
    if result.get("mode") == "line":
        accuracy = result.get("accuracy") or [None] * len(result["t"])
        return _csv(["k", "t", "loss", "accuracy"], ([k, _blank(t), _blank(l), _blank(a)] for k, (t, l, a) in enumerate(zip(result["t"], result["loss"], accuracy))))
    accuracy = result.get("accuracy")

    def rows():
        for i, a in enumerate(result["a"]):
            for j, b in enumerate(result["b"]):
                if result["computed"][i][j]:
                    acc = accuracy[i][j] if accuracy else None
                    yield [i, j, _blank(a), _blank(b), _blank(result["loss"][i][j]), _blank(acc)]

    return _csv(["i", "j", "a", "b", "loss", "accuracy"], rows())


def hessian_csv(result: dict) -> str:
    from webapp.landscapes.results import HessianResult

    spectrum = HessianResult.model_validate(result)
    eig = spectrum.eigenvalues
    rows = [["eigenvalue", k + 1, _blank(v), _blank(r)] for k, (v, r) in enumerate(zip(eig.values, eig.residuals))]
    if spectrum.trace:
        rows.append(["trace", "", _blank(spectrum.trace.estimate), _blank(spectrum.trace.stderr)])
    if spectrum.density:
        rows += [["density", k, _blank(x), _blank(d)] for k, (x, d) in enumerate(zip(spectrum.density.grid, spectrum.density.density))]
    return _csv(["quantity", "index", "value", "error_or_density"], rows)


def connectivity_csv(result: dict) -> str:
    rows = []
    for label, curve in result["curves"].items():
        accuracy = curve.get("accuracy") or [None] * len(curve["t"])
        rows += [[label, _blank(t), _blank(l), _blank(a)] for t, l, a in zip(curve["t"], curve["loss"], accuracy)]
    return _csv(["path", "t", "loss", "accuracy"], rows)
