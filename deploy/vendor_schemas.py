"""Refresh the JSON schemas the deployment tests validate against (deploy/schemas/).

    python -m deploy.vendor_schemas

The schemas are data, vendored with their licences so that the tests run offline. They are
fetched as Go modules through the Go module proxy (`go mod download`, which checks each
module's hash against the checksum database), from the versions pinned here and nowhere else:

- the Compose Specification's JSON schema: schema/compose-spec.json of
  github.com/compose-spec/compose-go/v2 (Apache-2.0);
- KEDA's ScaledObject and TriggerAuthentication: the openAPIV3Schema of the v1alpha1 version of
  config/crd/bases/keda.sh_scaledobjects.yaml and keda.sh_triggerauthentications.yaml of
  github.com/kedacore/keda/v2 (Apache-2.0).

The Kubernetes schemas come from the PyPI package kubernetes-validate, pinned in pyproject.toml.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

COMPOSE_GO = ("github.com/compose-spec/compose-go/v2", "v2.16.2")
KEDA = ("github.com/kedacore/keda/v2", "v2.21.0")
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "deploy" / "schemas"


def module_dir(module, version):
    env = dict(os.environ)
    env.setdefault("GOMODCACHE", str(ROOT / "var" / "gomodcache"))
    env.setdefault("GOFLAGS", "-mod=mod")
    go = shutil.which("go") or "/usr/local/go/bin/go"
    # an empty directory: go mod download outside a module needs no go.mod
    result = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], cwd=ROOT / "var",
                            env=env, capture_output=True, text=True)
    info = json.loads(result.stdout or "{}")
    # a module that needs a newer Go to build still downloads whole: only its Dir matters here
    if not info.get("Dir") or not Path(info["Dir"]).is_dir():
        raise SystemExit(f"go mod download {module}@{version} failed: {result.stderr or info.get('Error')}")
    return Path(info["Dir"])


def crd_schema(path, version="v1alpha1"):
    crd = yaml.safe_load(path.read_text())
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            return served["schema"]["openAPIV3Schema"]
    raise SystemExit(f"{path.name} has no {version}")


def write_json(name, document):
    (OUT / name).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"wrote deploy/schemas/{name}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    (ROOT / "var").mkdir(exist_ok=True)
    compose = module_dir(*COMPOSE_GO)
    shutil.copyfile(compose / "schema" / "compose-spec.json", OUT / "compose-spec.json")
    shutil.copyfile(compose / "LICENSE", OUT / "LICENSE.compose-go")
    print(f"wrote deploy/schemas/compose-spec.json from {COMPOSE_GO[0]}@{COMPOSE_GO[1]}")
    keda = module_dir(*KEDA)
    bases = keda / "config" / "crd" / "bases"
    write_json("keda-scaledobject-v1alpha1.json", crd_schema(bases / "keda.sh_scaledobjects.yaml"))
    write_json("keda-triggerauthentication-v1alpha1.json", crd_schema(bases / "keda.sh_triggerauthentications.yaml"))
    shutil.copyfile(keda / "LICENSE", OUT / "LICENSE.keda")
    return 0


if __name__ == "__main__":
    sys.exit(main())
