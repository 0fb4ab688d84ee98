"""``manage.py snapshot`` and ``manage.py export_dataset`` for scripts."""

import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command

from datasets.models import DatasetExport, DatasetSnapshot


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_snapshot_then_export_to_a_zip_from_the_command_line(dsworld, tmp_path):
    text = _run("snapshot", "--project", "cells", "--name", "nuclei", "--user", "cells-ml_engineer",
                "--filter", "modality=fluorescence", "--fractions", "0.5,0.25,0.25", "--json")
    info = json.loads(text)
    assert info["created"] is True and info["items"] == 6 and info["leak_check"]["ok"] is True
    snap = DatasetSnapshot.objects.get(pk=info["id"])
    assert snap.selection["filters"] == {"modality": ["fluorescence"]}
    human = _run("snapshot", "--project", "cells", "--name", "nuclei", "--user", "cells-ml_engineer",
                 "--filter", "modality=fluorescence", "--fractions", "0.5,0.25,0.25")
    assert human.startswith("unchanged since snapshot nuclei v1") and snap.content_hash in human

    out = tmp_path / "dl" / "nuclei.zip"
    text = _run("export_dataset", "--project", "cells", "--snapshot", "nuclei:v1", "--format", "coco",
                "--user", "cells-manager", "--out", str(out), "--no-progress")
    export = DatasetExport.objects.get(snapshot=snap)
    assert f"export {export.pk}: {export.n_files} files" in text and export.status == "succeeded"
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
    assert "cells-nuclei-v1-coco/manifest.json" in names
    assert sum(n.startswith("cells-nuclei-v1-coco/images/") for n in names) == 6
    assert not list(out.parent.glob(".*partial"))


@pytest.mark.parametrize("args, message", [
    (["--project", "nope", "--name", "n", "--user", "cells-manager"], "no project with slug 'nope'"),
    (["--project", "cells", "--name", "n", "--user", "ghost"], "no user 'ghost'"),
    (["--project", "cells", "--name", "n", "--user", "cells-manager", "--filter", "modality"], "FIELD=VALUE"),
    (["--project", "cells", "--name", "n", "--user", "cells-manager", "--fractions", "0.5,0.5"], "three numbers"),
    (["--project", "cells", "--name", "n", "--user", "cells-manager", "--fractions", "0.7,0.7,0.1"], "must sum to 1, got 1.5 (fractions)"),
    (["--project", "cells", "--name", "n", "--user", "cells-qa_lead"], "this needs manager, ml_engineer"),
])
def test_snapshot_command_errors_name_the_problem(dsworld, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _run("snapshot", *args)
    assert DatasetSnapshot.objects.count() == 0


def test_export_command_refuses_unknown_snapshot_and_bad_out(dsworld, tmp_path):
    with pytest.raises(CommandError, match="no snapshot 'nuclei' in project 'cells'"):
        _run("export_dataset", "--project", "cells", "--snapshot", "nuclei", "--format", "coco",
             "--user", "cells-manager")
    with pytest.raises(CommandError, match="give a .zip file name"):
        _run("export_dataset", "--project", "cells", "--snapshot", "1", "--format", "coco",
             "--user", "cells-manager", "--out", str(tmp_path))
