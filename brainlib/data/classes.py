"""Label lists, written once. Every loader, model config and table takes its classes from here."""
from __future__ import annotations

# RSNA 2019 ICH: the CSV's subtype names; `any` first as He et al. report it.
RSNA_SUBTYPES: tuple[str, ...] = (
    "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural",
)
RSNA_CLASSES: tuple[str, ...] = ("any",) + RSNA_SUBTYPES
# Short names used by the papers' tables (EDH, IPH, IVH, SAH, SDH).
RSNA_SHORT: dict[str, str] = {
    "any": "Any", "epidural": "EDH", "intraparenchymal": "IPH",
    "intraventricular": "IVH", "subarachnoid": "SAH", "subdural": "SDH",
}

# CQ500 reads.csv: the 14 per-reader fields, verbatim, in file order.
CQ500_READ_FIELDS: tuple[str, ...] = (
    "ICH", "IPH", "IVH", "SDH", "EDH", "SAH", "BleedLocation-Left", "BleedLocation-Right",
    "ChronicBleed", "Fracture", "CalvarialFracture", "OtherFracture", "MassEffect", "MidlineShift",
)
CQ500_READERS: tuple[str, ...] = ("R1", "R2", "R3")
CQ500_HEADER: tuple[str, ...] = ("name", "Category") + tuple(
    f"{r}:{f}" for r in CQ500_READERS for f in CQ500_READ_FIELDS
)
# The 9 labels Wang et al. (DrCT2) predict on CQ500.
CQ500_CLASSES: tuple[str, ...] = (
    "ICH", "IPH", "IVH", "SDH", "EDH", "SAH", "CalvarialFracture", "MassEffect", "MidlineShift",
)
