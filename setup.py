"""deeplab-keras: DeepLabv3 / DeepLabv3+ (with KSAC, DUC/HDC) on TensorFlow 2 and Keras 3."""

from setuptools import find_packages, setup

setup(
    name="deeplab-keras",
    version="0.1.0",
    description=(
        "A TensorFlow 2 / Keras 3 reimplementation of the original DeepLab release "
        "(DeepLabv3, DeepLabv3+), with KSAC, DUC/HDC and resolution-aware atrous rates."
    ),
    python_requires=">=3.10",
    packages=find_packages(include=["deeplab", "deeplab.*"]),
    # The Dense Prediction Cell structures shipped with the package.
    package_data={"deeplab.heads": ["cells/*.json"]},
    install_requires=[
        "tensorflow>=2.20,<2.22",
        "tensorboard",
        "keras>=3.10",
        "numpy",
        "absl-py",
        "opencv-python-headless",
        "tensorflow-datasets",
        "ai-edge-litert",
        "matplotlib",
        "pillow",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist", "ruff", "scipy"],
        "sbd": ["scipy"],
        "bench": ["keras-hub"],
    },
    entry_points={
        "console_scripts": [
            "deeplab-train = deeplab.cli.train:run",
            "deeplab-eval = deeplab.cli.eval:run",
            "deeplab-vis = deeplab.cli.vis:run",
            "deeplab-predict = deeplab.cli.predict:run",
            "deeplab-export = deeplab.cli.export_model:run",
            "deeplab-convert-tflite = deeplab.cli.convert_to_tflite:run",
            "deeplab-import-weights = deeplab.cli.import_weights:run",
            "deeplab-dataset-stats = deeplab.cli.dataset_stats:run",
        ]
    },
)
