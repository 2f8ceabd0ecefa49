"""The bridge from training to the device: model export and bundle packing.

Installed as ``edgefault.export``; the device never imports it.
"""
from edgefault.export.pack import pack_bundle

__all__ = ["pack_bundle"]
