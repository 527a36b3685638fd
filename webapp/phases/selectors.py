"""Reads on sweeps: the spec and header, the grid so far, a cell's models, exports."""

from webapp.jobs.models import Job
from webapp.phases.models import RunStatus, SweepCell, SweepRun


def sweep_spec(job: Job):
    from analysis.phases import validate_sweep

    return validate_sweep(job.params["spec"])


def sweep_header(spec) -> dict:
    return {
        "title": spec.name,
        "task": spec.task,
        "task_options": spec.task_options,
        "x": spec.x.to_dict(),
        "y": spec.y.to_dict(),
        "x_title": spec.x.title,
        "y_title": spec.y.title,
        "seeds": list(spec.seeds),
        "budget": spec.budget,
        "budget_unit": spec.budget_unit,
        "total_runs": spec.num_runs,
        "metrics": list(spec.metrics),
        "legend": {"grokking": spec.grokking.describe(), "taxonomy": spec.taxonomy.describe()},
    }


def sweep_phase_rule(params: dict) -> str:
    """The phase rule a sweep is about, the one its diagram is first coloured by: its preset's (the load x
    temperature preset shows Yang et al.'s taxonomy), else grokking on modular addition, else the taxonomy
    when the between-seed metrics it reads were measured."""
    from analysis.phases import PRESET_INFO

    preset = PRESET_INFO.get(params.get("preset") or "")
    if preset is not None:
        return preset["rule"]
    spec = params.get("spec") or {}
    if str((spec.get("task") or {}).get("name", "")).startswith("modular-addition"):
        return "grokking"
    return "taxonomy" if {"mode_connectivity", "cka"} <= set(spec.get("metrics") or ()) else "grokking"


def sweep_summary(*, job: Job) -> dict:
    """The finished diagram: header, every cell, per-run finals (the job's result)."""
    spec = sweep_spec(job)
    runs = SweepRun.objects.filter(job=job).values("i", "j", "seed", "status", "result", "attempts")
    return {
        **sweep_header(spec),
        "spec": spec.to_dict(),
        "cells": [cell.result for cell in SweepCell.objects.filter(job=job).order_by("i", "j")],
        "runs": [
            {"i": r["i"], "j": r["j"], "seed": r["seed"], "status": r["status"], "attempts": r["attempts"],
             "final": (r["result"] or {}).get("final"), "steps_to_train_90": (r["result"] or {}).get("steps_to_train_90"),
             "steps_to_test_90": (r["result"] or {}).get("steps_to_test_90")}
            for r in runs
        ],
    }


def sweep_cell_detail(*, job: Job, i: int, j: int) -> dict | None:
    """A cell's result and runs; None when (i, j) lies outside the grid."""
    spec = sweep_spec(job)
    if i >= len(spec.x.values) or j >= len(spec.y.values):
        return None
    cell = SweepCell.objects.filter(job=job, i=i, j=j).first()
    runs = SweepRun.objects.filter(job=job, i=i, j=j).order_by("seed")
    return {
        "i": i,
        "j": j,
        "cell": cell.result if cell else None,
        "runs": [
            {"id": r.pk, "seed": r.seed, "status": r.status, "error": r.error, "attempts": r.attempts,
             "curves": (r.result or {}).get("curves"), "final": (r.result or {}).get("final"),
             "has_model": bool(r.state_file) and r.status == RunStatus.SUCCEEDED}
            for r in runs
        ],
    }
