"""Packaging for prefect-storage (setuptools; pyproject.toml holds only build and tool settings)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def read_version() -> str:
    # Parsed, not imported: importing the package would need its dependencies at build time.
    text = (HERE / "prefect_storage" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("prefect_storage/_version.py does not define __version__")
    return match.group(1)


BACKEND_EXTRAS = {
    "aws": ["boto3>=1.28"],
    "gcp": ["google-cloud-storage>=2.10"],
    "azure": ["azure-storage-blob>=12.19", "azure-identity>=1.15"],
    "github": ["PyGithub>=2"],
    "gitlab": ["python-gitlab>=4"],
    "bitbucket": ["atlassian-python-api>=3.41"],
    "docker": ["docker>=7"],
    "postgres": ["psycopg[binary]>=3.1"],
}

EXTRAS = {
    **BACKEND_EXTRAS,
    "all": sorted({req for reqs in BACKEND_EXTRAS.values() for req in reqs}),
    "test": sorted(
        {req for reqs in BACKEND_EXTRAS.values() for req in reqs}
        | {"pytest>=8", "pytest-timeout", "ruff", "mypy", "moto[server]>=5", "gcp-storage-emulator"}
    ),
}

setup(
    name="prefect-storage",
    version=read_version(),
    description="The Prefect 1.x flow storage layer, re-created as a small, self-contained package",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["prefect_storage", "prefect_storage.*"]),
    include_package_data=True,
    zip_safe=False,
    install_requires=[
        "alembic>=1.13",
        "cloudpickle>=3.0",
        "requests>=2.28",
        "click>=8.1",
        "rich>=13",
        "sqlalchemy>=2.0",
        "tomli>=1.1; python_version < '3.11'",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["prefect-storage = prefect_storage.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)
