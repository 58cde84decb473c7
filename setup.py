"""Package discovery for the mapped top-level folders.

`pipelines/`, `reward_models/` and `configs/` live at the top of the repository but install under the
`mmpref.` namespace, so nothing called `pipelines` lands in a user's site-packages. Everything else
is in pyproject.toml.
"""

from setuptools import find_packages, setup

MAPPED = {"mmpref.pipelines": "pipelines", "mmpref.reward_models": "reward_models", "mmpref.configs": "configs"}

packages = find_packages(include=["mmpref", "mmpref.*"])
package_dir = {"mmpref": "mmpref"}
for namespace, folder in MAPPED.items():
    packages.append(namespace)
    package_dir[namespace] = folder
    for sub in find_packages(where=folder):
        packages.append(f"{namespace}.{sub}")
        package_dir[f"{namespace}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "mmpref.configs": ["*.yaml"],
        "mmpref.sandbox": ["assets/**/*"],
        "": ["*.json", "*.safetensors", "*.txt", "*.yaml"],
    },
    include_package_data=True,
)
