"""`terrain run KIND --option value ...`: start any job kind from a shell.

The options are not written here: they are read from the server's generated OpenAPI document
(GET /api/schema/, the params model each kind declares), so a new kind or field appears on the
command line without a client release.  `terrain kinds` lists the kinds; `terrain run KIND --help`
its options, with their help, limits and defaults.  TERRAIN_URL / TERRAIN_TOKEN (or --url/--token)
say where the server is.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from terrain.errors import TerrainError, ValidationError
from terrain.session import Session


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def params_schema(openapi: dict, kind: str) -> dict:
    """The JSON schema of `kind`'s params, from the job submission union of the OpenAPI document."""
    union = openapi["components"]["schemas"]["JobSubmission"]
    mapping = union.get("discriminator", {}).get("mapping", {})
    if kind not in mapping:
        known = ", ".join(sorted(mapping)) or "none"
        raise ValidationError(f"kind: no job kind {kind!r} on this server (known: {known})", errors={"kind": ["unknown"]})
    submission = _resolve(openapi, {"$ref": mapping[kind]})
    return _resolve(openapi, submission["properties"]["params"])


def _nonnull(prop: dict) -> tuple[dict, bool]:
    variants = prop.get("anyOf") or prop.get("oneOf")
    if not variants:
        return prop, False
    kept = [v for v in variants if v.get("type") != "null"]
    return (kept[0] if len(kept) == 1 else {}), len(kept) < len(variants)


def _item_type(items: dict):
    return {"integer": int, "number": float}.get(items.get("type"), str)


def _converter(spec: dict, nullable: bool):
    kind = spec.get("type")
    if kind == "array":
        item = _item_type(spec.get("items") or {})
        return lambda text: [item(part) for part in text.replace(" ", "").split(",") if part]
    base = {"integer": int, "number": float, "string": str}.get(kind, json.loads if kind in ("object", None) else str)
    if nullable:
        return lambda text: None if text in ("", "none", "null") else base(text)
    return base


def add_options(parser: argparse.ArgumentParser, params: dict) -> None:
    """One option per property of the params schema: --name (dashes for underscores)."""
    required = set(params.get("required", []))
    for name, prop in params.get("properties", {}).items():
        spec, nullable = _nonnull(prop)
        words = [prop.get("description") or spec.get("description") or prop.get("title") or ""]
        limits = [f"{label} {prop.get(key, spec.get(key))}" for key, label in (("minimum", "min"), ("maximum", "max"), ("maxLength", "max length"))
                  if prop.get(key, spec.get(key)) is not None]
        if "default" in prop:
            limits.append(f"default {json.dumps(prop['default'])}")
        if name in required:
            limits.append("required")
        help_text = " ".join(w for w in words if w) + (f" ({'; '.join(limits)})" if limits else "")
        flag = "--" + name.replace("_", "-")
        if spec.get("type") == "boolean":
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        elif "enum" in spec:
            parser.add_argument(flag, dest=name, choices=spec["enum"], default=argparse.SUPPRESS, help=help_text)
        else:
            metavar = "A,B,..." if spec.get("type") == "array" else (spec.get("type") or "JSON").upper()
            parser.add_argument(flag, dest=name, type=_converter(spec, nullable), default=argparse.SUPPRESS, metavar=metavar,
                                help=help_text)


def _session(args, session: Session | None) -> Session:
    return session or Session(args.url, args.token)


def main(argv: list[str] | None = None, *, session: Session | None = None, out=None) -> int:
    out = out or sys.stdout
    top = argparse.ArgumentParser(prog="terrain", description="Start and follow Terrain jobs.")
    top.add_argument("--url", help="the server (default: TERRAIN_URL)")
    top.add_argument("--token", help="a personal API token (default: TERRAIN_TOKEN)")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("kinds", help="the job kinds this server runs")
    run = commands.add_parser("run", help="start a job: terrain run KIND --help lists its options", add_help=False)
    run.add_argument("kind")
    args, rest = top.parse_known_args(argv)
    try:
        client = _session(args, session)
        if args.command == "kinds":
            for kind in client.get("/api/kinds/")["kinds"]:
                out.write(f"{kind['name']:<20} {kind['label']}\n")
            return 0
        return _run(client, args.kind, rest, out)
    except ValidationError as exc:
        sys.stderr.write(f"terrain: {exc}\n")
        for field, messages in exc.errors.items():
            sys.stderr.write(f"  --{field.replace('_', '-')}: {'; '.join(messages)}\n")
        return 2
    except TerrainError as exc:
        sys.stderr.write(f"terrain: {exc}\n")
        return 1


def _run(client: Session, kind: str, argv: list[str], out) -> int:
    from terrain.jobs import Job

    params = params_schema(client.get("/api/schema/"), kind)
    parser = argparse.ArgumentParser(prog=f"terrain run {kind}", description=params.get("description") or f"Start a {kind} job.")
    add_options(parser, params)
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends (a progress bar on stderr)")
    options = vars(parser.parse_args(argv))
    wait = options.pop("wait")
    body: dict[str, Any] = {"kind": kind, "params": options}
    job = Job(client.post("/api/jobs/", json=body), client)
    out.write(f"{job.slug} {job.url}\n")
    if wait:
        job.wait()
        out.write(f"{job.status}\n")
        return 0 if job.status == "succeeded" else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
