"""The layering rules of STYLE.md section 1, checked in fresh interpreters."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# The pure core: numeric modules that must never pull in Django, DRF or Celery.
PURE_CORE = [
    "qa.metrics", "qa.consensus", "qa.noise", "qa.simulate",
    "guidelines.rules",
    "annotation.masks", "annotation.imagefiles",
    "training.evaluate", "training.backbones.base", "training.backbones.cellpose",
    "training.backbones.sam", "training.backbones.cellpose_net", "training.backbones.cellpose_steps",
    "training.backbones.sam_model", "training.backbones.uncertainty", "training.assist",
    "training.active_learning", "training.bioimageio", "training.enums",
]


def _module_path(name: str) -> Path:
    base = REPO_ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


PRESENT = [name for name in PURE_CORE if _module_path(name).exists()]


def _loaded_after_import(module: str) -> set[str]:
    code = (
        "import importlib, json, sys; "
        f"importlib.import_module({module!r}); "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_core_modules_that_exist_are_checked():
    # qa.metrics and annotation.masks are the foundation of every other module.
    assert {"qa.metrics", "annotation.masks"} <= set(PRESENT)


@pytest.mark.parametrize("module", PRESENT)
def test_pure_core_module_never_imports_django(module):
    loaded = _loaded_after_import(module)
    assert not loaded & {"django", "rest_framework", "celery"}, f"{module} pulls in {loaded & {'django', 'rest_framework', 'celery'}}"


def test_web_process_does_not_load_torch():
    code = (
        "import os, sys, json; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; "
        "import django; django.setup(); import config.urls, config.wsgi; "
        "print(json.dumps('torch' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False
