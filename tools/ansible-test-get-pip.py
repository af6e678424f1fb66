"""Stand-in for the pip bootstrap script ansible-test downloads into its venvs.

ansible-test creates every sanity venv without pip and then runs a get-pip
script fetched from a download site outside the package registries (it
offers a cache path for exactly this case). This script does the same job
with what is reachable: the interpreter's bundled pip (ensurepip), then pip
itself installs the requested versions from the package index.
"""

from __future__ import annotations

import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools": "setuptools", "--no-wheel": "wheel"}


def main() -> int:
    args = sys.argv[1:]
    unwanted = [package for flag, package in GET_PIP_ONLY_FLAGS.items() if flag in args]
    pip_args = [arg for arg in args if arg not in GET_PIP_ONLY_FLAGS]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *pip_args])
    if unwanted:
        subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", *unwanted])
    return 0


if __name__ == "__main__":
    sys.exit(main())
