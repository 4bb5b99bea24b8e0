"""Small ISO 9660 images (seed ISOs, OEMDRV) built with pycdlib, in memory."""

from __future__ import annotations

import io


def small_iso(label: str, files: list[tuple[str, str, bytes]]) -> bytes:
    """An ISO labelled ``label`` holding ``files`` at its root.

    Each file is ``(iso9660_name, name, data)``: the 8.3 ISO 9660 name (e.g.
    ``"USERDATA."``) and the exact name given to Joliet and Rock Ridge.
    """
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, joliet=3, rock_ridge="1.09", vol_ident=label)
    out = io.BytesIO()
    try:
        for iso_name, name, data in files:
            iso.add_fp(io.BytesIO(data), len(data), f"/{iso_name};1", rr_name=name, joliet_path=f"/{name}")
        iso.write_fp(out)
    finally:
        iso.close()
    return out.getvalue()
