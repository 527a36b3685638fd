"""`terrain run KIND --option ...`: the options come from the server's generated schema, i.e. from the kind's params model."""

import io

import pytest

from terrain import cli
from webapp.jobs.models import Job
from webapp.training.params import TrainParams


def test_the_options_of_a_kind_are_its_declared_params(wsgi_session, capsys):
    session = wsgi_session()
    with pytest.raises(SystemExit) as done:
        cli.main(["run", "train", "--help"], session=session)
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    for name in TrainParams.model_fields:
        assert "--" + name.replace("_", "-") in help_text, name
    assert "--no-track-sharpness" in help_text and "{digits,moons}" in help_text and "min 1e-06; max 10.0" in help_text


def test_run_starts_the_job_with_the_given_options_only(wsgi_session, no_enqueue):
    out = io.StringIO()
    code = cli.main(["run", "train", "--dataset", "moons", "--hidden", "8,4", "--lr", "0.1", "--epochs", "2", "--no-track-sharpness",
                     "--visibility", "unlisted"], session=wsgi_session(), out=out)
    assert code == 0
    job = Job.objects.get()
    assert out.getvalue() == f"{job.slug} http://testserver/r/{job.slug}/\n"
    assert (job.params["dataset"], job.params["hidden"], job.params["lr"], job.params["epochs"]) == ("moons", [8, 4], 0.1, 2)
    assert job.params["track_sharpness"] is False and job.params["batch_size"] == 64  # the server's default
    assert job.visibility == "unlisted" and [j.slug for j in no_enqueue] == [job.slug]


def test_a_refused_option_is_named(wsgi_session, no_enqueue, capsys):
    assert cli.main(["run", "train", "--epochs", "100000"], session=wsgi_session()) == 2
    assert "--epochs: Input should be less than or equal to 300" in capsys.readouterr().err
    assert cli.main(["run", "no-such-kind"], session=wsgi_session()) == 2
    assert not Job.objects.exists() and no_enqueue == []


def test_kinds_lists_every_kind(wsgi_session):
    from webapp.jobs import kinds

    out = io.StringIO()
    assert cli.main(["kinds"], session=wsgi_session(), out=out) == 0
    assert [line.split()[0] for line in out.getvalue().splitlines()] == [k.name for k in kinds.all_kinds()]
