#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_image
short_description: Build an image on the Docker host only when its build inputs changed
version_added: 0.1.0
description:
  - Builds O(name) from a build context directory on the managed host, through the Docker SDK.
  - The build inputs - every file of the context (path, mode, content), the Dockerfile name, the build
    arguments, the labels and the id of the base image - are hashed; the hash is stored in the image's
    C(org.openclaw.standalone.build-hash) label. When the image O(name) exists with the same hash, nothing is
    built, so a no-op converge never rebuilds.
  - The previous image is left in place (untagged) while containers still use it; rolling upgrades depend on
    that.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
  - openclaw.standalone.docker
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - Image reference to build, C(repository:tag).
    type: str
    required: true
  build_context:
    description:
      - Directory on the managed host holding the Dockerfile and everything it copies. Keep it dedicated to the
        image - every file in it counts towards the build hash.
    type: path
    required: true
  dockerfile:
    description:
      - Dockerfile path relative to O(build_context).
    type: str
    default: Dockerfile
  build_args:
    description:
      - Build arguments (C(ARG) values).
    type: dict
    default: {}
  base_image:
    description:
      - Image the Dockerfile starts from, passed as the C(BASE_IMAGE) build argument. Its id is part of the
        build hash, so a new base image rebuilds. Pulled when missing and O(pull_base=true).
    type: str
  pull_base:
    description:
      - Pull O(base_image) when it is not on the host. With V(false) a missing base image fails the task.
    type: bool
    default: true
  labels:
    description:
      - Labels set on the image (the build hash label is added).
    type: dict
    default: {}
  force:
    description:
      - Build even when the build hash is unchanged (without Docker's layer cache).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Runtime image, rebuilt only when its Dockerfile, entrypoint or build arguments change
  openclaw.standalone.openclaw_image:
    name: openclaw-runtime:2026.2.17
    build_context: /opt/openclaw/runtime
    base_image: node:22-slim
    build_args:
      OPENCLAW_VERSION: 2026.2.17
"""

RETURN = r"""
image_id:
  description: Id of the image after the run (in check mode, of the current image, if any).
  returned: always
  type: str
previous_image_id:
  description: Id of the image O(name) pointed at before the run.
  returned: always
  type: str
built:
  description: Whether the image was (or in check mode would be) built.
  returned: always
  type: bool
build_hash:
  description: Hash of the build inputs.
  returned: always
  type: str
"""

import hashlib
import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import (
    LABEL_BUILD_HASH,
    LABEL_MANAGED,
    DockerFailure,
    config_hash,
    connect,
    docker,
    docker_common_argument_spec,
    ensure_docker_sdk,
    find_image,
)

BUILD_LOG_TAIL = 25


def context_digest(root):
    """sha256 over every file below ``root``: relative path, permission bits and content, in a stable order."""
    digest = hashlib.sha256()
    entries = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        for filename in files:
            path = os.path.join(directory, filename)
            entries.append((os.path.relpath(path, root), path))
    for relative, path in sorted(entries):
        info = os.lstat(path)
        digest.update(("%s\0%o\0" % (relative, stat.S_IMODE(info.st_mode))).encode("utf-8"))
        if stat.S_ISLNK(info.st_mode):
            digest.update(os.readlink(path).encode("utf-8"))
        else:
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def ensure_base_image(client, module, reference):
    image = find_image(client, reference)
    if image is not None:
        return image
    if not module.params["pull_base"]:
        module.fail_json(msg="base_image %s is not on the host and pull_base is false" % reference)
    if module.check_mode:
        return None
    try:
        return client.images.pull(reference)
    except docker.errors.APIError as exc:
        module.fail_json(msg="cannot pull base_image %s: %s" % (reference, exc))


def build_log_tail(log_entries):
    lines = []
    for entry in log_entries or []:
        text = entry.get("stream") or entry.get("error") or ""
        lines.extend(line for line in text.splitlines() if line.strip())
    return "\n".join(lines[-BUILD_LOG_TAIL:])


def main():
    argument_spec = docker_common_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        build_context=dict(type="path", required=True),
        dockerfile=dict(type="str", default="Dockerfile"),
        build_args=dict(type="dict", default={}),
        base_image=dict(type="str"),
        pull_base=dict(type="bool", default=True),
        labels=dict(type="dict", default={}),
        force=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_docker_sdk(module)
    params = module.params
    context = params["build_context"]
    dockerfile = os.path.join(context, params["dockerfile"])
    if not os.path.isfile(dockerfile):
        module.fail_json(msg="dockerfile %s does not exist on the host" % dockerfile)
    build_args = {str(key): str(value) for key, value in params["build_args"].items()}
    client = connect(module)
    result = dict(changed=False, built=False, image_id=None, previous_image_id=None)
    try:
        base_id = None
        if params["base_image"]:
            build_args["BASE_IMAGE"] = params["base_image"]
            base = ensure_base_image(client, module, params["base_image"])
            base_id = base.id if base is not None else "to be pulled"
        try:
            files = context_digest(context)
        except OSError as exc:
            module.fail_json(msg="cannot read build_context %s: %s" % (context, exc))
        inputs = dict(files=files, dockerfile=params["dockerfile"], build_args=build_args, base_id=base_id, labels=params["labels"])
        build_hash = config_hash(inputs)
        result["build_hash"] = build_hash
        current = find_image(client, params["name"])
        current_hash = (current.labels or {}).get(LABEL_BUILD_HASH) if current is not None else None
        result["previous_image_id"] = result["image_id"] = current.id if current is not None else None
        if current_hash == build_hash and not params["force"]:
            module.exit_json(**result)
        result.update(changed=True, built=True)
        if module._diff:
            result["diff"] = dict(
                before="build hash: %s\n" % (current_hash or "(no image)"),
                after="build hash: %s\n" % build_hash,
                before_header="image %s" % params["name"],
                after_header="image %s" % params["name"],
            )
        if module.check_mode:
            module.exit_json(**result)
        labels = dict(params["labels"])
        labels[LABEL_BUILD_HASH] = build_hash
        labels[LABEL_MANAGED] = "true"
        try:
            image = client.images.build(
                path=context,
                dockerfile=params["dockerfile"],
                tag=params["name"],
                buildargs=build_args,
                labels=labels,
                rm=True,
                forcerm=True,
                nocache=params["force"],
                pull=False,
            )[0]
        except docker.errors.BuildError as exc:
            module.fail_json(msg="building %s failed: %s\n%s" % (params["name"], exc.msg, build_log_tail(exc.build_log)), **result)
        except docker.errors.APIError as exc:
            module.fail_json(msg="building %s failed: %s" % (params["name"], exc), **result)
        result["image_id"] = image.id
    except DockerFailure as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
