"""The runtime layer: from images to saliency maps, overlays, metrics and a report.

It imports the compiler (`xaigraph`), which never imports it. The contracts between its
modules are in docs/runtime.md.
"""

from __future__ import annotations
