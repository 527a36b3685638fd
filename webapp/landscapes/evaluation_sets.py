"""The evaluation set of each task a merge is scored on.

Either built-in digits subsets given by class lists ("0,1,2,3,4; 5,6,7,8,9": one
task per list, as a family fine-tuned on different digits needs), or the
checkpoints' own data (one task per distinct dataset they were trained on).
"""

from __future__ import annotations

from webapp.landscapes import evaluation_data

MAX_TASKS = 6


class EvaluationSetError(ValueError):
    pass


def parse_class_lists(text: str) -> list[list[int]]:
    """"0,1,2; 3,4" -> [[0, 1, 2], [3, 4]]; empty text -> []."""
    lists = []
    for k, part in enumerate(p for p in (text or "").split(";") if p.strip()):
        try:
            classes = sorted({int(c) for c in part.replace(" ", "").split(",") if c != ""})
        except ValueError:
            raise EvaluationSetError(f"task {k + 1} ({part.strip()!r}) must be digit classes separated by commas") from None
        if not classes or any(not 0 <= c <= 9 for c in classes):
            raise EvaluationSetError(f"task {k + 1} ({part.strip()!r}) must list digit classes between 0 and 9")
        lists.append(classes)
    if len(lists) > MAX_TASKS:
        raise EvaluationSetError(f"at most {MAX_TASKS} tasks (got {len(lists)})")
    return lists


def format_class_lists(lists: list[list[int]]) -> str:
    return "; ".join(",".join(map(str, classes)) for classes in lists)


def own_datasets(checkpoints) -> list[str]:
    """The distinct datasets the checkpoints were trained on, in order."""
    names: list[str] = []
    for checkpoint in checkpoints:
        name = evaluation_data.resolve(evaluation_data.CHECKPOINT_DATA, checkpoint)
        if name not in names:
            names.append(name)
    return names


def tasks_for(*, class_lists: list[list[int]], datasets: list[str], split: str, size: int, owner_id: int | None):
    """``analysis.merging.Task`` per class list (digits), or per dataset when no class list is given."""
    from analysis import merging

    if class_lists:
        tasks = []
        for classes in class_lists:
            task = merging.digits_task(classes, split)
            tasks.append(merging.Task(task.name, *evaluation_data.subsample(task.X, task.y, size)))
        return tasks
    return [merging.Task(name, *evaluation_data.evaluation_data(dataset=name, split=split, size=size, owner_id=owner_id))
            for name in datasets]
