"""PEP 517 build backend of the quantd client: setuptools' own, made to work offline.

pip builds a project in an isolated environment and installs the build requirements there, from
the network. quantd's users install on Debian 12 machines that may have no route to PyPI but have
setuptools and wheel as Debian packages (python3-setuptools, python3-wheel). So pyproject.toml
declares no static build requirement, and this backend, before delegating every hook to
setuptools.build_meta, lets the build see the interpreter's own site-packages (the ones pip's
isolation hides). It asks pip for setuptools or wheel only when the interpreter has none, so a
machine with network and without those packages still builds.
"""
import importlib
import re
import site
import sys

for _path in site.getsitepackages() + site.getsitepackages([sys.base_prefix]):
    if _path not in sys.path:
        sys.path.append(_path)  # after pip's build environment, which keeps precedence

try:
    from setuptools import build_meta as _setuptools
except ImportError:  # no setuptools anywhere: ask pip for it, then it is imported on the next hook
    _setuptools = None

_SETUPTOOLS = "setuptools>=61"


def _missing(requirements):
    """The requirements whose module cannot be imported here."""
    missing = []
    for requirement in requirements:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].replace("-", "_")
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(requirement)
    return missing


def _backend():
    global _setuptools
    if _setuptools is None:
        from setuptools import build_meta  # installed by pip after get_requires_for_build_*
        _setuptools = build_meta
    return _setuptools


def get_requires_for_build_wheel(config_settings=None):
    if _setuptools is None:
        return [_SETUPTOOLS, "wheel"]
    return _missing(_setuptools.get_requires_for_build_wheel(config_settings))


def get_requires_for_build_sdist(config_settings=None):
    if _setuptools is None:
        return [_SETUPTOOLS]
    return _missing(_setuptools.get_requires_for_build_sdist(config_settings))


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _backend().prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _backend().build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    return _backend().build_sdist(sdist_directory, config_settings)
