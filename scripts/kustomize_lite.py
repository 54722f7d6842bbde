#!/usr/bin/env python3
"""A small kustomize renderer for deploy/, used when no kustomize binary is installed.

    python3 scripts/kustomize_lite.py deploy/overlays/production > rendered.yaml

Real kustomize (or `kubectl kustomize`) cannot be downloaded on every machine that
runs CI, so scripts/check-deploy.sh falls back to this renderer; where a real
kustomize is installed, the script renders with it AND with this file and fails if
the two disagree, so the renderer cannot drift from kustomize unnoticed.

It implements exactly the kustomization features deploy/ uses, with kustomize v5
semantics, and refuses every other field instead of ignoring it:

* ``resources``: YAML files (several documents allowed) and directories holding a
  kustomization (rendered recursively first);
* ``patches`` given by ``path`` only, each a strategic-merge patch that names its
  target by apiVersion/kind/metadata.name. Maps merge; ``null`` deletes a key;
  lists of containers, initContainers, volumes, env and imagePullSecrets merge by
  ``name``, volumeMounts by ``mountPath``, container ports by ``containerPort``,
  Service ports by ``port``; every other list is replaced. ``$patch`` directives
  are refused;
* ``namespace``: set on every namespaced object;
* ``labels`` (``pairs``, ``includeSelectors: false``, ``includeTemplates``):
  added to metadata.labels and, with includeTemplates, to the pod templates of
  Deployments, StatefulSets, DaemonSets, ReplicaSets and Jobs (and CronJobs' job
  templates);
* ``images`` (``name``, ``newName``, ``newTag``, ``digest``): rewrites matching
  container and initContainer images.

Transformations run in kustomize's order: patches, namespace, labels, images.
Objects are printed in kustomize's legacy kind order, keys sorted.
"""

import copy
import os
import sys

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "patches", "namespace", "labels", "images"}
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
}
# kustomize's legacy output order (api/resid/gvk.go): these first, in this order,
# the webhooks last, everything else in between.
ORDER_FIRST = [
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
    "ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding",
    "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange",
    "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
    "StatefulSet", "CronJob", "PodDisruptionBudget",
]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
}
WORKLOADS_WITH_TEMPLATE = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class RenderError(Exception):
    pass


def load_yaml_documents(path):
    with open(path) as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def kustomization_file(directory):
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    raise RenderError(f"{directory}: no kustomization.yaml")


def ident(obj):
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion"), obj.get("kind"), meta.get("name"))


def merge_key_for(field, items):
    if field == "ports":
        return "containerPort" if any("containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field)


def strategic_merge(target, patch, where):
    """Merges `patch` into `target` (both dicts) in place."""
    for key, value in patch.items():
        if key.startswith("$"):
            raise RenderError(f"{where}: patch directive {key} is not supported")
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            strategic_merge(target[key], value, f"{where}.{key}")
        elif (isinstance(value, list) and isinstance(target.get(key), list)
              and value and all(isinstance(i, dict) for i in value)
              and merge_key_for(key, value + target[key])):
            merge_key = merge_key_for(key, value + target[key])
            merged = target[key]
            for item in value:
                if merge_key not in item:
                    raise RenderError(f"{where}.{key}: list item without {merge_key}")
                existing = next((t for t in merged if t.get(merge_key) == item[merge_key]), None)
                if existing is None:
                    merged.append(copy.deepcopy(item))
                else:
                    strategic_merge(existing, item, f"{where}.{key}[{item[merge_key]}]")
        else:
            target[key] = copy.deepcopy(value)


def pod_templates(obj):
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind in WORKLOADS_WITH_TEMPLATE and isinstance(spec.get("template"), dict):
        yield spec["template"]
    if kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        if isinstance(template, dict):
            yield template


def pod_specs(obj):
    if obj.get("kind") == "Pod":
        yield obj.get("spec") or {}
    for template in pod_templates(obj):
        yield template.get("spec") or {}


def split_image(image):
    """`name[:tag][@digest]` -> (name, tag, digest); a registry port is not a tag."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        image, tag = image[:colon], image[colon + 1:]
    return image, tag, digest


def render(directory):
    path = kustomization_file(directory)
    with open(path) as fh:
        kust = yaml.safe_load(fh) or {}
    unknown = set(kust) - SUPPORTED
    if unknown:
        raise RenderError(f"{path}: unsupported field(s) {sorted(unknown)}; use a real kustomize")
    if kust.get("kind", "Kustomization") != "Kustomization":
        raise RenderError(f"{path}: kind must be Kustomization")

    objects = []
    for resource in kust.get("resources") or []:
        if "://" in resource or resource.startswith("github.com/"):
            raise RenderError(f"{path}: remote resource {resource} is not supported")
        full = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(full):
            objects.extend(render(full))
        elif os.path.isfile(full):
            objects.extend(load_yaml_documents(full))
        else:
            raise RenderError(f"{path}: resource {resource} does not exist")
    seen = set()
    for obj in objects:
        key = ident(obj)
        if None in key:
            raise RenderError(f"{path}: an object lacks apiVersion, kind or metadata.name")
        if key in seen:
            raise RenderError(f"{path}: duplicate object {key}")
        seen.add(key)

    for patch_ref in kust.get("patches") or []:
        if set(patch_ref) != {"path"}:
            raise RenderError(f"{path}: only `patches: - path: FILE` is supported")
        patch_file = os.path.join(directory, patch_ref["path"])
        for patch in load_yaml_documents(patch_file):
            targets = [o for o in objects if ident(o) == ident(patch)]
            if len(targets) != 1:
                raise RenderError(f"{patch_file}: no single target for {ident(patch)}")
            strategic_merge(targets[0], patch, patch_file)

    namespace = kust.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace

    for entry in kust.get("labels") or []:
        if set(entry) - {"pairs", "includeSelectors", "includeTemplates"}:
            raise RenderError(f"{path}: unsupported labels option in {entry}")
        if entry.get("includeSelectors"):
            raise RenderError(f"{path}: labels with includeSelectors are not supported")
        pairs = {str(k): str(v) for k, v in (entry.get("pairs") or {}).items()}
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(pairs)
            if entry.get("includeTemplates"):
                for template in pod_templates(obj):
                    template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)

    for image in kust.get("images") or []:
        if set(image) - {"name", "newName", "newTag", "digest"}:
            raise RenderError(f"{path}: unsupported images option in {image}")
        for obj in objects:
            for spec in pod_specs(obj):
                for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                    name, tag, digest = split_image(container.get("image", ""))
                    if name != image["name"]:
                        continue
                    name = image.get("newName", name)
                    if "newTag" in image:
                        tag = str(image["newTag"])
                    if "digest" in image:
                        tag, digest = None, image["digest"]
                    container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return objects


def order_key(obj):
    kind = obj["kind"]
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind)
    elif kind in ORDER_LAST:
        rank = len(ORDER_FIRST) + 1 + ORDER_LAST.index(kind)
    else:
        rank = len(ORDER_FIRST)
    meta = obj["metadata"]
    return (rank, obj["apiVersion"], kind, meta.get("namespace", ""), meta["name"])


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print(f"usage: {argv[0]} KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    try:
        objects = render(argv[1])
    except (RenderError, OSError, yaml.YAMLError) as exc:
        print(f"kustomize_lite: {exc}", file=sys.stderr)
        return 1
    objects.sort(key=order_key)
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=True, default_flow_style=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
