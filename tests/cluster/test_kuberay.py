"""deploy/kuberay/: the RayJob and RayService validate against the KubeRay CRDs' OpenAPI schemas
(strictly: an unknown field is an error, as with `kubectl apply`'s default field validation),
and agree with cluster.yaml, the SVP recipe the job runs and serve/config.yaml."""

import copy
import functools
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT.parent / "shared" / "kuberay-crds"
KUBERAY = ROOT / "deploy" / "kuberay"
MANIFESTS = {"RayJob": KUBERAY / "rayjob-svp.yaml", "RayService": KUBERAY / "rayservice-endpoint.yaml"}
CRD_FILES = {"RayJob": "ray.io_rayjobs.yaml", "RayService": "ray.io_rayservices.yaml"}
CLUSTER_KEY = {"RayJob": "rayClusterSpec", "RayService": "rayClusterConfig"}
# serve/config.yaml runs the ShapesWorld models on CPU; the RayService differs from it only here
GPU_ARGS = {"vlm", "value", "clip", "torch_threads"}
GPU_DEPLOYMENT_KEYS = {"ray_actor_options"}
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def strict(schema):
    """The schema with unknown properties refused wherever it lists properties and does not
    preserve unknown fields (what the API server's strict field validation enforces)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: strict(v) if k in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "not") else v
        for k, v in schema.items()
    }
    if "properties" in schema:
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


def crd_validator(kind: str, api_version: str):
    if not CRDS.is_dir():
        pytest.skip(f"KubeRay CRDs not found at {CRDS} (the shared folder beside the clone, ../shared)")
    return _validator(kind, api_version)


@functools.cache
def _validator(kind: str, api_version: str):
    import jsonschema

    # the CRD files are 1-1.4 MB: libyaml reads them in under a second, pure Python in ~8 s
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load((CRDS / CRD_FILES[kind]).read_text(), Loader=loader)
    group, version = api_version.split("/")
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    assert version in versions and versions[version]["served"], f"{api_version} is not served by the CRD"
    schema = strict(versions[version]["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def load(kind: str) -> dict:
    return yaml.safe_load(MANIFESTS[kind].read_text())


def errors(kind: str, manifest: dict) -> list[str]:
    v = crd_validator(kind, manifest["apiVersion"])
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in v.iter_errors(manifest)]


def cluster_spec(kind: str) -> dict:
    return load(kind)["spec"][CLUSTER_KEY[kind]]


def quantity(value) -> float:
    """A Kubernetes CPU or count quantity ('8', 8, '500m') as a number."""
    s = str(value)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


@pytest.mark.parametrize("kind", list(MANIFESTS))
def test_manifest_validates_against_crd(kind):
    m = load(kind)
    assert m["kind"] == kind and m["apiVersion"] == "ray.io/v1"
    assert not errors(kind, m)
    name = m["metadata"]["name"]
    assert DNS_1123.match(name) and len(name) <= 63


@pytest.mark.parametrize("kind", list(MANIFESTS))
def test_validation_catches_typos_and_wrong_types(kind):
    m = load(kind)
    typo = copy.deepcopy(m)
    group = typo["spec"][CLUSTER_KEY[kind]]["workerGroupSpecs"][0]
    group["minReplica"] = group.pop("minReplicas")
    assert any("minReplica" in e for e in errors(kind, typo))
    wrong = copy.deepcopy(m)
    wrong["spec"][CLUSTER_KEY[kind]]["workerGroupSpecs"][0]["maxReplicas"] = "eight"
    assert any("maxReplicas" in e for e in errors(kind, wrong))
    missing = copy.deepcopy(m)
    del missing["spec"][CLUSTER_KEY[kind]]["headGroupSpec"]["template"]
    assert errors(kind, missing)


@pytest.mark.parametrize("kind", list(MANIFESTS))
def test_cluster_shape_matches_cluster_yaml(kind):
    """The same CPU head and GPU worker type as cluster.yaml, autoscaled from zero."""
    cfg = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    head_type, gpu_type = cfg["available_node_types"][cfg["head_node_type"]], cfg["available_node_types"]["gpu_worker"]
    spec = cluster_spec(kind)
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["idleTimeoutSeconds"] == cfg["idle_timeout_minutes"] * 60
    (group,) = spec["workerGroupSpecs"]
    assert group["minReplicas"] == gpu_type["min_workers"] == 0
    assert group["maxReplicas"] == gpu_type["max_workers"]
    assert group.get("replicas", 0) == 0
    (worker,) = group["template"]["spec"]["containers"]
    limits = worker["resources"]["limits"]
    assert quantity(limits["nvidia.com/gpu"]) == gpu_type["resources"]["GPU"] == 1
    assert quantity(limits["cpu"]) == gpu_type["resources"]["CPU"]
    (head,) = spec["headGroupSpec"]["template"]["spec"]["containers"]
    assert quantity(head["resources"]["limits"]["cpu"]) == head_type["resources"]["CPU"]
    assert "nvidia.com/gpu" not in head["resources"]["limits"] and "GPU" not in head_type["resources"]


def mount_paths(kind: str) -> dict[str, set[str]]:
    spec = cluster_spec(kind)
    pods = {"head": spec["headGroupSpec"]["template"]["spec"]}
    pods |= {g["groupName"]: g["template"]["spec"] for g in spec["workerGroupSpecs"]}
    return {
        name: {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        for name, pod in pods.items()
    }


def under(path: str, mounts: set[str]) -> bool:
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


def test_rayjob_runs_the_svp_recipe_on_shared_storage():
    from groundloop import config as config_lib
    from pipelines.svp.config import SVPConfig

    spec = load("RayJob")["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:3] == ["python", "pipelines/svp.py", "--config"]
    recipe, overrides = argv[3], argv[4:]
    assert (ROOT / recipe).is_file()
    cfg = config_lib.load(SVPConfig, ROOT / recipe, overrides)  # unknown keys and bad values refused
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert set(runtime_env) <= {"working_dir", "env_vars", "pip", "py_modules"} and runtime_env["working_dir"]
    # every node reads the images and writes the run (parquet, Ray Train checkpoints)
    for node, mounts in mount_paths("RayJob").items():
        for path in (cfg.data.path, cfg.data.eval_path, cfg.run.dir):
            assert under(path, mounts), f"{path} is not on a volume mounted in the {node} pods"
        assert under(runtime_env["env_vars"]["HF_HOME"], mounts)
    # GPU actors, and the train stage fits in the worker group (one Train worker per GPU)
    (group,) = cluster_spec("RayJob")["workerGroupSpecs"]
    gpus = quantity(group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
    assert cfg.resources.gpus_per_actor > 0
    assert cfg.train.num_workers <= group["maxReplicas"] * gpus


def test_rayservice_serves_serve_config_yaml_on_gpus():
    import importlib

    from serve.app import ServeConfig

    local = yaml.safe_load((ROOT / "serve" / "config.yaml").read_text())
    served = yaml.safe_load(load("RayService")["spec"]["serveConfigV2"])
    assert served["http_options"]["host"] == "0.0.0.0"  # reachable through the serve Service
    assert [a["name"] for a in served["applications"]] == [a["name"] for a in local["applications"]]
    (group,) = cluster_spec("RayService")["workerGroupSpecs"]
    gpus = quantity(group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
    for app, ref in zip(served["applications"], local["applications"]):
        assert app["import_path"] == ref["import_path"] and app["route_prefix"] == ref["route_prefix"]
        module, attr = app["import_path"].split(":")
        assert callable(getattr(importlib.import_module(module), attr))
        ServeConfig.from_dict(app["args"])  # strict: unknown keys and bad types refused
        assert {k: v for k, v in app["args"].items() if k not in GPU_ARGS} == {
            k: v for k, v in ref["args"].items() if k not in GPU_ARGS
        }
        (dep,), (ref_dep,) = app["deployments"], ref["deployments"]
        assert {k: v for k, v in dep.items() if k not in GPU_DEPLOYMENT_KEYS} == {
            k: v for k, v in ref_dep.items() if k not in GPU_DEPLOYMENT_KEYS
        }
        assert dep["ray_actor_options"]["num_gpus"] == gpus == 1  # a replica per GPU worker
        assert dep["autoscaling_config"]["max_replicas"] <= group["maxReplicas"]
        for node, mounts in mount_paths("RayService").items():
            assert under(app["args"]["value"], mounts), f"the value model is not mounted in the {node} pods"
