# SPDX-License-Identifier: MIT
# Everything is in setup.cfg; this file lets pip build without PEP 517
# isolation (no network) where setuptools and wheel are installed.
from setuptools import setup

setup()
