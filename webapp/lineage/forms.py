"""Forms of the lineage job kinds: importing a graph, kinship of two checkpoints, recovery from weights."""

from __future__ import annotations

import re

from django import forms

from webapp.catalog.uploads import UploadRejected
from webapp.lineage import imports, uploads
from webapp.lineage.models import GraphSource, LineageUpload
from webapp.training.forms import JobOptionsMixin


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.Field):
    """Any number of files.  The import form refuses a file it can judge at once (suffix, size, JSON
    that does not parse or nests too deep) naming it; a bad row inside becomes a line of the report."""

    widget = MultipleFileInput

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def to_python(self, data):
        if not data:
            return []
        return list(data) if isinstance(data, (list, tuple)) else [data]

    def bound_data(self, data, initial):
        return initial  # files are never echoed back into the form


_ID_SPLIT = re.compile(r"[\s,]+")


class LineageImportForm(JobOptionsMixin):
    name = forms.CharField(max_length=200, help_text="What to call this graph.")
    edge_files = MultipleFileField(
        label="Edge lists (CSV or JSON)",
        help_text="Columns: a child id (id, model_id, current_model, child, ...) and its parent(s) (base_model, parent, "
                  "...; several separated by commas), optionally a relation (finetune, adapter, quantized, merge, "
                  "unknown, or 'source' for a root). Other columns become node attributes (license, language, ...).",
    )
    edges_text = forms.CharField(
        required=False, label="Or paste CSV", widget=forms.Textarea(attrs={"rows": 4, "placeholder": "id,base_model\n"}),
        max_length=100_000, help_text="Up to 100,000 characters; larger lists as a file.",
    )
    card_files = MultipleFileField(
        label="Model cards (.md)",
        help_text="README.md files with YAML front matter (base_model, base_model_relation, license, language, "
                  "pipeline_tag ...). Name each <owner>__<model>.md: the file name gives the model id.",
    )
    hub_ids = forms.CharField(
        required=False, label="Hub model ids", widget=forms.Textarea(attrs={"rows": 3, "placeholder": "meta-llama/Llama-3.1-8B-Instruct"}),
        help_text=f"One per line (at most {imports.MAX_HUB_IDS}): their model info is fetched from the Hugging Face Hub.",
    )
    follow_parents = forms.BooleanField(required=False, initial=True, help_text="Also fetch the parents of those models, up the tree.")

    field_order = ["name", "edge_files", "edges_text", "card_files", "hub_ids", "follow_parents", "experiment", "visibility"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["experiment"].help_text = "Slug of one of your experiments; empty: a new experiment for this graph."
        self.fields["visibility"].help_text = "Who sees a new experiment (and so this graph)."

    def clean_hub_ids(self):
        ids = [i.strip().rstrip("/") for i in _ID_SPLIT.split(self.cleaned_data.get("hub_ids") or "") if i.strip()]
        if len(ids) > imports.MAX_HUB_IDS:
            raise forms.ValidationError(f"at most {imports.MAX_HUB_IDS} model ids (got {len(ids)})")
        too_long = [i for i in ids if len(i) > 200]
        if too_long:
            raise forms.ValidationError(f"{len(too_long)} model id(s) longer than 200 characters")
        return list(dict.fromkeys(ids))

    def clean(self):
        cleaned = super().clean()
        self.pending_uploads = []  # stored by job_submit, in the transaction that queues the job
        files = (cleaned.get("edge_files") or []) + (cleaned.get("card_files") or [])
        if len(files) > imports.MAX_FILES:
            self.add_error(None, f"at most {imports.MAX_FILES} files at once")
        total = sum(f.size or 0 for f in files)
        if total > 4 * imports.max_upload_bytes():
            self.add_error(None, f"{total:,} bytes uploaded; the limit is {4 * imports.max_upload_bytes():,} in all")
        if not files and not (cleaned.get("edges_text") or "").strip() and not cleaned.get("hub_ids"):
            self.add_error(None, "give at least one edge list, model card, pasted CSV or Hub model id")
        if self.errors:
            return cleaned
        pasted = (cleaned.get("edges_text") or "").strip()
        given = [("edge_files", f, LineageUpload.Kind.EDGES) for f in cleaned.get("edge_files") or []]
        given += [("edges_text", uploads.pasted_edges(cleaned["edges_text"]), LineageUpload.Kind.EDGES)] if pasted else []
        given += [("card_files", f, LineageUpload.Kind.CARD) for f in cleaned.get("card_files") or []]
        for field, uploaded, kind in given:
            try:
                self.pending_uploads.append(uploads.PendingLineageFile(uploaded, kind))
            except UploadRejected as exc:
                self.add_error(field, str(exc))
        if self.errors:
            for pending in self.pending_uploads:
                pending.close()
            self.pending_uploads = []
        return cleaned

    def to_params(self) -> dict:
        c = self.cleaned_data
        files = [{"upload": p.slug, "name": p.original_name, "kind": p.kind} for p in self.pending_uploads]
        from_files = bool(files)
        source = (GraphSource.MIXED if from_files and c["hub_ids"] else GraphSource.HUB if c["hub_ids"]
                  else GraphSource.UPLOAD)
        return {"name": c["name"], "files": files, "hub_ids": c["hub_ids"], "follow_parents": bool(c["follow_parents"]),
                "source": str(source)}


class KinshipForm(JobOptionsMixin):
    """Two catalog checkpoints (and their base); the cheap checks run here, the weights in the worker."""

    a = forms.CharField(max_length=32, label="Checkpoint A", help_text="Slug of a catalog checkpoint.")
    b = forms.CharField(max_length=32, label="Checkpoint B")
    base = forms.CharField(max_length=32, required=False, label="Common base",
                           help_text="Empty: their nearest common ancestor in the catalog.")

    field_order = ["a", "b", "base", "visibility", "experiment"]

    def clean(self):
        from webapp.catalog.selectors import checkpoint_get_visible
        from webapp.lineage.kinship import KinshipError, kinship_base

        cleaned = super().clean()
        found = {}
        for key in ("a", "b", "base"):
            slug = (cleaned.get(key) or "").strip()
            if slug:
                found[key] = checkpoint_get_visible(slug=slug, user=self.user)
                if found[key] is None:
                    self.add_error(key, f"no checkpoint {slug!r} that you can see")
        if self.errors:
            return cleaned
        try:
            self.kinship_base = kinship_base(a=found["a"], b=found["b"], base=found.get("base"))
        except KinshipError as exc:
            self.add_error(exc.field, exc.message)
        return cleaned

    def to_params(self) -> dict:
        c = self.cleaned_data
        return {"a": c["a"].strip(), "b": c["b"].strip(), "base": self.kinship_base.slug}

